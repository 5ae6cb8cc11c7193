package ddsim

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoDataOKMonitors: a monitor that accepts no data is served with
// notify_no_data false, the others with true.
func TestNoDataOKMonitors(t *testing.T) {
	e := newEnv(t, Options{})
	got := e.list(t, params())
	require.NotEmpty(t, got)
	for _, m := range got {
		want := m.GetName() != "kafka-consumer-lag" && m.GetName() != "connect-consumer-lag"
		assert.Equal(t, want, m.Options.GetNotifyNoData(), m.GetName())
	}
}
