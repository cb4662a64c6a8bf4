"""A pipeline release that resets an aggregator's intermediate state.

The release itself (deploying the new pipeline version) is whatever your program already does; here it
is the `release` config value. The reset runs once per release tag and whenever the asset/point sets
change, never on a plain re-run, and only while the pipeline is paused. With `pausePipeline: true` in the
stack config, a RUNNING pipeline is paused for the reset and started again (hands-free).
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
    pause_pipeline=config.get_bool("pausePipeline") or False,  # pause a RUNNING pipeline, then resume it
    resume_execution_mode=config.get("resumeExecutionMode"),  # "standalone" or "cluster"
    resume_policy=config.get("resumePolicy"),  # "always": start it after the reset even if found PAUSED
    # With the pipeline deployment in the same program, order the reset after it:
    # opts=pulumi.ResourceOptions(depends_on=[pipeline_release]),
)

pulumi.export("reset_at", reset.reset_at)
pulumi.export("request_ids", reset.request_ids)
pulumi.export("ids_hash", reset.ids_hash)
pulumi.export("paused_by_reset", reset.paused_by_reset)
