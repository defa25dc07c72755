"""Checks on an ONNX graph that came out of the sandbox, before it is stored and served.

The graph was produced from a hostile artifact by a process that might, in the worst case, have
been taken over; so it is treated as hostile too. A graph is data, but some data still reaches
outside itself or trips a runtime: tensors stored in external files (onnxruntime would open
them by path), custom operator domains and functions (code the runtime would look up), and tree
ensembles whose node links point out of range or in a cycle. Those are refused here; what is left
is plain operators from the standard and ML domains over inline tensors.
"""

from typing import Any

MAX_GRAPH_BYTES = 1024 * 1024 * 1024
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
TREE_OPS = frozenset({"TreeEnsembleClassifier", "TreeEnsembleRegressor"})
# Operators that carry subgraphs: the converters never emit them for scikit-learn models.
SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan"})


class GraphError(Exception):
    """The graph is refused; the message says why."""


def _tensors(model: Any) -> list[Any]:
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                tensors.append(attribute.t)
            tensors.extend(attribute.tensors)
    return tensors


def _check_tree(node: Any) -> None:
    """Every tree of an ensemble: links in range, and each node reached once from its root."""
    attrs = {a.name: a for a in node.attribute}
    try:
        tree_ids = list(attrs["nodes_treeids"].ints)
        node_ids = list(attrs["nodes_nodeids"].ints)
        true_ids = list(attrs["nodes_truenodeids"].ints)
        false_ids = list(attrs["nodes_falsenodeids"].ints)
        modes = [m.decode() for m in attrs["nodes_modes"].strings]
    except KeyError as exc:
        raise GraphError(f"a tree ensemble lacks its {exc.args[0]} attribute") from exc
    count = len(node_ids)
    if not all(len(x) == count for x in (tree_ids, true_ids, false_ids, modes)):
        raise GraphError("a tree ensemble's node attributes differ in length")
    trees: dict[int, dict[int, int]] = {}
    for position, (tree, node_id) in enumerate(zip(tree_ids, node_ids, strict=True)):
        nodes = trees.setdefault(tree, {})
        if node_id in nodes:
            raise GraphError(f"tree {tree} repeats node {node_id}")
        nodes[node_id] = position
    for tree, nodes in trees.items():
        if 0 not in nodes:
            raise GraphError(f"tree {tree} has no root node")
        seen: set[int] = set()
        stack = [0]
        while stack:
            node_id = stack.pop()
            if node_id in seen:
                raise GraphError(f"tree {tree} reaches node {node_id} twice (a cycle)")
            seen.add(node_id)
            position = nodes[node_id]
            if modes[position] == "LEAF":
                continue
            for child in (true_ids[position], false_ids[position]):
                if child not in nodes:
                    raise GraphError(f"tree {tree} links node {node_id} to a missing {child}")
                stack.append(child)


def graph_verify(graph: bytes) -> dict[str, Any]:
    """Parse and check a graph; returns a summary (operators, inputs, outputs).

    Raises:
        GraphError: the graph is unreadable or uses something refused above.
    """
    import onnx

    if not graph or len(graph) > MAX_GRAPH_BYTES:
        raise GraphError("the graph is empty or larger than any model needs")
    try:
        model = onnx.load_model_from_string(graph)
        onnx.checker.check_model(model)
    except Exception as exc:
        raise GraphError(f"the graph is not a valid ONNX model ({str(exc)[:200]})") from exc
    for opset in model.opset_import:
        if opset.domain not in ALLOWED_DOMAINS:
            raise GraphError(f"the graph imports the operator domain {opset.domain!r}")
    if len(model.functions):
        raise GraphError("the graph defines functions")
    for tensor in _tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise GraphError("the graph refers to tensors stored in external files")
    operators = set()
    for node in model.graph.node:
        if node.domain not in ALLOWED_DOMAINS:
            raise GraphError(f"the graph uses an operator from domain {node.domain!r}")
        if node.op_type in SUBGRAPH_OPS or any(a.g.ByteSize() for a in node.attribute):
            raise GraphError(f"the graph uses the control-flow operator {node.op_type}")
        if node.op_type.startswith("TreeEnsemble") and node.op_type not in TREE_OPS:
            raise GraphError(f"the graph uses the unfamiliar tree operator {node.op_type}")
        if node.op_type in TREE_OPS:
            _check_tree(node)
        operators.add(node.op_type)
    return {
        "operators": sorted(operators),
        "inputs": [i.name for i in model.graph.input],
        "outputs": [o.name for o in model.graph.output],
    }
