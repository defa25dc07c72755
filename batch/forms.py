from typing import Any

from django import forms

from batch import selectors
from batch.models import FileFormat


class BatchJobForm(forms.Form):
    model = forms.ChoiceField(help_text="A registered model with a ready version.")
    version = forms.IntegerField(
        required=False, min_value=1, help_text="Leave empty for the alias, or production."
    )
    alias = forms.SlugField(required=False, max_length=64, help_text="e.g. production, staging")
    input = forms.FileField(help_text="CSV (with a header row) or Parquet.")
    outputs = forms.MultipleChoiceField(
        choices=[("predict", "predict"), ("predict_proba", "predict_proba")],
        initial=["predict"],
        widget=forms.CheckboxSelectMultiple,
    )
    id_columns = forms.CharField(
        required=False, max_length=2000, help_text="Comma-separated columns to carry through."
    )
    format = forms.ChoiceField(choices=FileFormat.choices, initial=FileFormat.CSV)
    as_of = forms.BooleanField(
        required=False,
        label="As of event_timestamp",
        help_text="The file holds entity keys and event_timestamp; features come from the "
        "version's feature service, point in time.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = list(selectors.batch_models().values_list("name", flat=True))
        model_field = self.fields["model"]
        assert isinstance(model_field, forms.ChoiceField)
        model_field.choices = [(name, name) for name in names]
