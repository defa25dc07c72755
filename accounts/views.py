"""Pages: sign-in lives in urls.py (Django's views); here each user's profile with their own
API tokens (create, copy once, revoke after a confirmation)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts import forms, selectors, services
from mlplatform.errors import ApplicationError


def _model_names() -> list[str]:
    return list(selectors.scopable_models().order_by("name").values_list("name", flat=True))


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    """List your tokens and create one; a new key is shown on this response only."""
    form = forms.TokenForm(request.POST or None, model_names=_model_names())
    created = key = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        never = data["expires"] == forms.NEVER
        try:
            created, key = services.token_create(
                user=request.user,
                name=data["name"],
                expires_in_days=None if never else float(data["expires"]),
                no_expiry=never,
                scope=data["scope"],
                predict_models=data["models"],
            )
        except ApplicationError as exc:
            # "name: ..." errors belong to the field they name
            field = exc.extra.get("field")
            if field in form.fields:
                form.add_error(field, exc.message.split(": ", 1)[-1])
            else:
                form.add_error(None, exc.message)
        else:
            form = forms.TokenForm(model_names=_model_names())
    response = render(
        request,
        "accounts/tokens.html",
        {
            "tokens": selectors.token_list(user=request.user),
            "form": form,
            "created": created,
            "key": key,
            "teams": request.user.groups.order_by("name"),
        },
    )
    response["Cache-Control"] = "no-store"  # the page may hold a key
    return response


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    """GET asks for a confirmation; POST revokes."""
    try:
        token = selectors.token_get(user=request.user, token_id=token_id)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    if request.method == "GET":
        return render(request, "accounts/token_revoke.html", {"token": token})
    services.token_revoke(user=request.user, token_id=token.pk)
    messages.success(request, f"Token {token.name!r} revoked.")
    return redirect("accounts:tokens")
