// A pipeline release in TypeScript: the stage state reset through the provider plugin pulumi-resource-enos.
// `@pulumi/enos` is the local SDK that `pulumi package add ../..` generates from the plugin's schema.
import * as pulumi from "@pulumi/pulumi";
import * as enos from "@pulumi/enos";

const config = new pulumi.Config();

const reset = new enos.StageStateReset("window-agg-reset", {
    pipelineId: config.require("pipelineId"),
    stageInstanceName: "FixedTimeWindowAggregator_1",
    assetIds: ["inv01", "inv02", "inv03"],
    pointIds: ["INV.GenActivePW", "INV.Temp"],
    trigger: config.require("release"), // a new release tag resets again; removing it does nothing
    verify: true, // read the state back and fail if any remains
    pausePipeline: true, // a RUNNING pipeline is paused for the reset and started again
    resumeExecutionMode: "standalone",
});

export const resetAt = reset.resetAt;
export const requestIds = reset.requestIds;
export const pausedByReset = reset.pausedByReset;
