import dagster as dg

# One partition per drama; keys are validated drama ids (skyscript_assets.ids).
dramas_partitions = dg.DynamicPartitionsDefinition(name="dramas")
