package workflows

import (
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Custom search attributes, so rollouts and batches can be found in the Web
// UI and with `temporal workflow list --query`, e.g.
//
//	RolloutName = 'kafka-3-7-1'
//	WorkflowType = 'Rollout' AND Paused = true
//	WorkflowType = 'Rollout' AND RolloutState = 'aborted'
//
// They must be registered on the namespace (the dev stack and the compose
// stack's init do it; see README).
var (
	SARolloutName   = temporal.NewSearchAttributeKeyKeyword("RolloutName")
	SAProduct       = temporal.NewSearchAttributeKeyKeyword("Product")
	SATargetVersion = temporal.NewSearchAttributeKeyKeyword("TargetVersion")
	SAPhase         = temporal.NewSearchAttributeKeyKeyword("Phase")
	SAPaused        = temporal.NewSearchAttributeKeyBool("Paused")
	// SARolloutState is the fleet's own state of a rollout or batch
	// (RolloutState, BatchState): an aborted rollout is not "Completed".
	SARolloutState = temporal.NewSearchAttributeKeyKeyword("RolloutState")
	// SAClusters was set on batches by the previous release (a list of
	// cluster IDs, which breaks a stock server's 2 KB value limit above
	// ~200 clusters); no longer set: QueryClusterBatch finds a cluster's
	// batch.
	SAClusters = temporal.NewSearchAttributeKeyKeywordList("Clusters")
)

// SearchAttributeNames lists the custom search attributes by name and type
// ("Keyword", "Bool", "KeywordList"), for registration.
func SearchAttributeNames() map[string]string {
	return map[string]string{
		SARolloutName.GetName():   "Keyword",
		SAProduct.GetName():       "Keyword",
		SATargetVersion.GetName(): "Keyword",
		SAPhase.GetName():         "Keyword",
		SAPaused.GetName():        "Bool",
		SARolloutState.GetName():  "Keyword",
		SAClusters.GetName():      "KeywordList",
	}
}

func upsert(ctx workflow.Context, updates ...temporal.SearchAttributeUpdate) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
	}
}

// products joins the distinct products of a plan, sorted ("connect,kafka").
func products(ids map[string]bool) string {
	return strings.Join(workflow.DeterministicKeys(ids), ",")
}
