package bench

import (
	"context"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	sdkclient "go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// largestPayload reads one run's history and returns the size of its
// largest payload and the type of the event that holds it.
func largestPayload(ctx context.Context, c sdkclient.Client, workflowID, runID string, types map[string]int) (int, string, error) {
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	most, where := 0, ""
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return most, where, err
		}
		types[strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_")]++
		if n := eventLargestPayload(e); n > most {
			most, where = n, strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_")
		}
	}
	return most, where, nil
}

// eventLargestPayload is the serialized size of the largest
// common.Payload anywhere in the event: inputs, results, signal and
// update arguments, marker details (local activities), memos, search
// attributes, failure details.
func eventLargestPayload(e *historypb.HistoryEvent) int {
	most := 0
	walkPayloads(e.ProtoReflect(), func(p *commonpb.Payload) {
		most = max(most, proto.Size(p))
	})
	return most
}

// walkPayloads calls f with every common.Payload in m, at any depth, in
// lists and map values too.
func walkPayloads(m protoreflect.Message, f func(*commonpb.Payload)) {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		f(p)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walkPayloads(mv.Message(), f)
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					walkPayloads(l.Get(i).Message(), f)
				}
			}
		case fd.Message() != nil:
			walkPayloads(v.Message(), f)
		}
		return true
	})
}
