"""A pipeline release that resets an aggregator's intermediate state.

The release itself (deploying the new pipeline version) is whatever your program already does; here it
is the `release` config value. The reset runs once per release tag and whenever the asset/point sets
change, never on a plain re-run, and only while the pipeline is paused.
"""

import pulumi

from enos_pulumi import StageStateReset

config = pulumi.Config()
release = config.require("release")

reset = StageStateReset(
    "window-agg-reset",
    pipeline_id=config.require("pipelineId"),
    stage_instance_name=config.get("stageInstanceName") or "FixedTimeWindowAggregator_1",
    asset_ids=config.require_object("assetIds"),
    point_ids=config.require_object("pointIds"),
    trigger=release,  # a new release tag resets again; removing it does nothing
    verify=True,  # read the state back and fail if any remains
    # With the pipeline deployment in the same program, order the reset after it:
    # opts=pulumi.ResourceOptions(depends_on=[pipeline_release]),
)

pulumi.export("reset_at", reset.reset_at)
pulumi.export("request_ids", reset.request_ids)
pulumi.export("ids_hash", reset.ids_hash)
