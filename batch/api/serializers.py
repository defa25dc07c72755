from rest_framework import serializers

from batch.models import FileFormat


class BatchJobInputSerializer(serializers.Serializer):
    model = serializers.SlugField(max_length=100)
    version = serializers.IntegerField(required=False, min_value=1)
    alias = serializers.SlugField(required=False, max_length=64)
    input = serializers.FileField(allow_empty_file=False)
    outputs = serializers.CharField(required=False, allow_blank=True, max_length=100)
    id_columns = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    format = serializers.ChoiceField(choices=FileFormat.choices, required=False)
    as_of = serializers.BooleanField(
        required=False,
        default=False,
        help_text="The input holds entity keys + event_timestamp; features are looked up point "
        "in time from the version's feature service.",
    )
