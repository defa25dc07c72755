from django import forms

from features.models import FeatureService


class TrainingSetForm(forms.Form):
    feature_service = forms.ModelChoiceField(
        queryset=FeatureService.objects.all(), required=False, to_field_name="name"
    )
    features = forms.CharField(
        required=False,
        help_text="Comma-separated group:feature references (instead of a feature service).",
    )
    entity_file = forms.FileField(
        help_text="CSV or Parquet with the entity's join keys and event_timestamp."
    )
    format = forms.ChoiceField(choices=[("csv", "CSV"), ("parquet", "Parquet")])
    full_names = forms.BooleanField(required=False, help_text="Name columns group__feature.")

    def clean(self) -> dict:
        data = super().clean() or {}
        if bool(data.get("feature_service")) == bool((data.get("features") or "").strip()):
            raise forms.ValidationError("Choose a feature service or list features, not both.")
        return data


class IngestForm(forms.Form):
    file = forms.FileField(help_text="CSV or Parquet: join keys, event_timestamp, the features.")
