"""A graph out of the sandbox is hostile too: each way a graph could reach outside itself or trip
the runtime is refused before it is stored."""

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier

from registry.graphs import GraphError, graph_verify


def _identity_model(**kwargs: Any) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("X", TensorProto.DOUBLE, [None, 2])
    y = helper.make_tensor_value_info("Y", TensorProto.DOUBLE, [None, 2])
    graph = helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], **kwargs)


def _forest_graph() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    forest = RandomForestClassifier(n_estimators=2, max_depth=3, random_state=0)
    forest.fit(x, (x[:, 0] > 0).astype(int))
    model: onnx.ModelProto = to_onnx(forest, x[:1].astype(np.float32), target_opset=17)
    return model


def _tree_node(model: onnx.ModelProto) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type.startswith("TreeEnsemble"))


def _ints(node: onnx.NodeProto, name: str) -> Any:
    return next(a for a in node.attribute if a.name == name).ints


def test_a_plain_graph_and_a_converted_forest_pass() -> None:
    summary = graph_verify(_identity_model().SerializeToString())
    assert summary["operators"] == ["Identity"]

    forest = graph_verify(_forest_graph().SerializeToString())
    assert "TreeEnsembleClassifier" in forest["operators"]


def test_tensors_in_external_files_are_refused(tmp_path: Any) -> None:
    # given a graph whose initializer says "read my bytes from /etc/passwd"
    model = _identity_model()
    tensor = numpy_helper.from_array(np.zeros(2), name="W")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"
    model.graph.initializer.append(tensor)

    with pytest.raises(GraphError, match=r"external|not a valid"):
        graph_verify(model.SerializeToString())


def test_custom_operator_domains_are_refused() -> None:
    model = _identity_model()
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(GraphError, match="domain"):
        graph_verify(model.SerializeToString())

    custom = _identity_model()
    custom.graph.node[0].domain = "evil.ops"
    with pytest.raises(GraphError, match=r"domain|not a valid"):
        graph_verify(custom.SerializeToString())


def test_functions_and_control_flow_are_refused() -> None:
    model = _identity_model()
    function = helper.make_function(
        "",
        "F",
        ["a"],
        ["b"],
        [helper.make_node("Identity", ["a"], ["b"])],
        [helper.make_opsetid("", 17)],
    )
    model.functions.append(function)
    with pytest.raises(GraphError, match=r"function|not a valid"):
        graph_verify(model.SerializeToString())


@pytest.mark.parametrize("corruption", ["out_of_range", "cycle", "missing_root"])
def test_trees_with_broken_links_are_refused(corruption: str) -> None:
    # given a real converted forest whose node links were rewritten
    model = _forest_graph()
    node = _tree_node(model)
    trees, nodes = _ints(node, "nodes_treeids"), _ints(node, "nodes_nodeids")
    true_ids = _ints(node, "nodes_truenodeids")
    first_branch = next(
        i
        for i, m in enumerate(next(a for a in node.attribute if a.name == "nodes_modes").strings)
        if m != b"LEAF"
    )
    if corruption == "out_of_range":
        true_ids[first_branch] = 10_000
    elif corruption == "cycle":
        true_ids[first_branch] = nodes[first_branch]  # a node that is its own child
    else:
        for i, tree in enumerate(trees):
            if tree == 0:
                nodes[i] += 1000

    # then the graph is refused, naming the tree
    with pytest.raises(GraphError, match="tree"):
        graph_verify(model.SerializeToString())


def test_garbage_and_empty_bytes_are_refused() -> None:
    for data in (b"", b"\x00" * 100, b"not a protobuf at all" * 10):
        with pytest.raises(GraphError):
            graph_verify(data)
