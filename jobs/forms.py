from django import forms

from jobs.models import Job


class JobFilterForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", "any kind"), *Job.Kind.choices], required=False)
    status = forms.ChoiceField(choices=[("", "any status"), *Job.Status.choices], required=False)
