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
//	WorkflowType = 'Batch' AND ExecutionStatus = 'Running' AND Clusters = 'lkc-00042'
//
// They must be registered on the namespace (the dev stack and the compose
// stack's init do it; see README).
var (
	SARolloutName   = temporal.NewSearchAttributeKeyKeyword("RolloutName")
	SAProduct       = temporal.NewSearchAttributeKeyKeyword("Product")
	SATargetVersion = temporal.NewSearchAttributeKeyKeyword("TargetVersion")
	SAPhase         = temporal.NewSearchAttributeKeyKeyword("Phase")
	SAPaused        = temporal.NewSearchAttributeKeyBool("Paused")
	SAClusters      = temporal.NewSearchAttributeKeyKeywordList("Clusters")
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
