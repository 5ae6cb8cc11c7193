package devserver

import (
	"strings"
	"testing"

	"go.temporal.io/server/common/dynamicconfig"
	serverlog "go.temporal.io/server/common/log"
)

// TestStockLimits: every limit the dev server sets is the stock server's
// default (the setting's own default in the server module), and no other
// limit is raised.
func TestStockLimits(t *testing.T) {
	dev := dynamicconfig.NewCollection(dynamicConfig(0, nil), serverlog.NewNoopLogger())
	stock := dynamicconfig.NewCollection(dynamicconfig.StaticClient{}, serverlog.NewNoopLogger())
	const ns = "default"
	nsInts := []dynamicconfig.NamespaceIntSetting{
		dynamicconfig.SearchAttributesSizeOfValueLimit,
		dynamicconfig.SearchAttributesTotalSizeLimit,
		dynamicconfig.SearchAttributesNumberOfKeysLimit,
		dynamicconfig.BlobSizeLimitError,
		dynamicconfig.BlobSizeLimitWarn,
		dynamicconfig.MemoSizeLimitError,
		dynamicconfig.MemoSizeLimitWarn,
		dynamicconfig.HistorySizeLimitError,
		dynamicconfig.HistorySizeLimitWarn,
		dynamicconfig.HistoryCountLimitError,
		dynamicconfig.HistoryCountLimitWarn,
		dynamicconfig.HistorySizeSuggestContinueAsNew,
		dynamicconfig.HistoryCountSuggestContinueAsNew,
		dynamicconfig.NumPendingChildExecutionsLimitError,
		dynamicconfig.NumPendingActivitiesLimitError,
		dynamicconfig.NumPendingSignalsLimitError,
		dynamicconfig.NumPendingCancelRequestsLimitError,
		dynamicconfig.MaximumSignalsPerExecution,
		dynamicconfig.WorkflowExecutionMaxInFlightUpdates,
		dynamicconfig.WorkflowExecutionMaxTotalUpdates,
	}
	for _, s := range nsInts {
		if got, want := s.Get(dev)(ns), s.Get(stock)(ns); got != want {
			t.Errorf("%s = %d, stock %d", s.Key(), got, want)
		}
	}
	globalInts := []dynamicconfig.GlobalIntSetting{
		dynamicconfig.MutableStateSizeLimitError,
		dynamicconfig.MutableStateSizeLimitWarn,
		dynamicconfig.TransactionSizeLimit,
		dynamicconfig.MaximumBufferedEventsBatch,
		dynamicconfig.MaximumBufferedEventsSizeInBytes,
		dynamicconfig.MaxIDLengthLimit,
	}
	for _, s := range globalInts {
		if got, want := s.Get(dev)(), s.Get(stock)(); got != want {
			t.Errorf("%s = %d, stock %d", s.Key(), got, want)
		}
	}
	if n := len(stockLimits()); n != len(nsInts)+len(globalInts) {
		t.Errorf("stockLimits sets %d keys, the test checks %d: check the new ones here", n, len(nsInts)+len(globalInts))
	}
	for k := range dynamicConfig(0, nil) {
		if _, ok := stockLimits()[k]; !ok && isLimitKey(k.String()) {
			t.Errorf("%s is set and is not the stock value: dev must not raise a limit", k)
		}
	}
}

func isLimitKey(k string) bool {
	k = strings.ToLower(k)
	return strings.Contains(k, "limit") || strings.Contains(k, "maximum")
}
