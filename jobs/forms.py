from django import forms

from jobs.models import Job


class JobFilterForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("", "any kind"), *Job.Kind.choices],
        required=False,
        widget=forms.Select(attrs={"aria-label": "Kind"}),
    )
    status = forms.ChoiceField(
        choices=[("", "any status"), *Job.Status.choices],
        required=False,
        widget=forms.Select(attrs={"aria-label": "Status"}),
    )
    q = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Search description or #id",
                "aria-label": "Search",
            }
        ),
    )
