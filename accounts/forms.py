from typing import Any

from django import forms
from django.conf import settings

from accounts.models import ApiToken

NEVER = "never"
_LIFETIMES = (1, 7, 30, 90, 365)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. 'churn scoring service'.")
    expires = forms.ChoiceField(label="Expires after")
    scope = forms.ChoiceField(choices=ApiToken.Scope.choices, initial=ApiToken.Scope.FULL)
    models = forms.MultipleChoiceField(
        required=False,
        help_text="With 'predict only': the models it may predict with.",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )

    def __init__(self, *args: Any, model_names: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        longest = settings.MLPLATFORM_TOKEN_TTL_DAYS
        days = [d for d in _LIFETIMES if longest is None or d < longest]
        choices = [(str(d), f"{d} days") for d in days]
        if longest is None:
            choices.append((NEVER, "never"))
        else:
            choices.append((f"{longest:g}", f"{longest:g} days (the longest allowed)"))
        self.fields["expires"].choices = choices  # type: ignore[attr-defined]
        self.fields["expires"].initial = choices[-1][0]
        self.fields["models"].choices = [(name, name) for name in model_names]  # type: ignore[attr-defined]
