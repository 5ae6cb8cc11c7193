package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/fleet-rollout/fleet/internal/connect"
	"github.com/fleet-rollout/fleet/internal/events"
	"github.com/fleet-rollout/fleet/workflows"
)

// defaultBrokers is where history reads fleet.events without KAFKA_BROKERS.
const defaultBrokers = "127.0.0.1:9092"

// historyTimeout bounds reading the events topic.
const historyTimeout = 2 * time.Minute

const historyDetail = "Reads the event log (Kafka topic " + workflows.EventsTopic + " at KAFKA_BROKERS) from its\n" +
	"start to its current end, without a consumer group, and prints every rollout\n" +
	"that touched the cluster: target version, when, the cluster's final state,\n" +
	"how the rollout ended, and the alerts raised on the cluster during it.\n" +
	"The log outlives Temporal's retention; Temporal is not asked."

// brokers is KAFKA_BROKERS split on commas, or the default.
func (e *env) brokers() []string {
	var out []string
	for _, b := range strings.Split(e.getenv("KAFKA_BROKERS"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		out = []string{defaultBrokers}
	}
	return out
}

// historyReport is what `fleet history --json` prints.
type historyReport struct {
	Cluster  string         `json:"cluster"`
	Rollouts []events.Entry `json:"rollouts"`
}

// oneCluster checks that exactly one cluster ID was given.
func oneCluster(cmd *command, pos []string) (string, error) {
	switch {
	case len(pos) == 0:
		return "", usagef(cmd.name, "%s: missing cluster ID (usage: fleet %s)", cmd.name, cmd.synopsis)
	case len(pos) > 1:
		return "", usagef(cmd.name, "%s: unexpected argument %q (usage: fleet %s)", cmd.name, pos[1], cmd.synopsis)
	case strings.TrimSpace(pos[0]) == "":
		return "", usagef(cmd.name, "%s: empty cluster ID", cmd.name)
	}
	return strings.TrimSpace(pos[0]), nil
}

func cmdHistory(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	return func(ctx context.Context, pos []string) error {
		id, err := oneCluster(cmd, pos)
		if err != nil {
			return err
		}
		read := e.history
		if read == nil {
			// Kafka's TLS and SASL from KAFKA_TLS*, KAFKA_SASL_*.
			kopts, err := connect.KafkaOpts(e.getenv)
			if err != nil {
				return err
			}
			read = func(ctx context.Context, brokers []string, clusterID string) ([]events.Entry, error) {
				return events.History(ctx, brokers, clusterID, events.WithClientOptions(kopts...))
			}
		}
		brokers := e.brokers()
		hctx, cancel := context.WithTimeout(ctx, historyTimeout)
		defer cancel()
		entries, err := read(hctx, brokers, id)
		switch {
		case errors.Is(err, events.ErrNoTopic):
			return fmt.Errorf("no history yet: topic %s does not exist at %s (KAFKA_BROKERS chooses the brokers)",
				workflows.EventsTopic, strings.Join(brokers, ","))
		case err != nil:
			return fmt.Errorf("history of %s from Kafka at %s (KAFKA_BROKERS chooses the brokers, KAFKA_TLS* and KAFKA_SASL_* the security): %w", id, strings.Join(brokers, ","), err)
		}
		if e.asJSON() {
			if entries == nil {
				entries = []events.Entry{}
			}
			return writeJSON(e.stdout, historyReport{Cluster: id, Rollouts: entries})
		}
		renderHistory(e.stdout, id, entries)
		return nil
	}
}

// outcomeText is "failed: broker 2 did not come back; the rollout was aborted".
func outcomeText(en events.Entry) string {
	s := string(en.State)
	if s == "" {
		s = "no state reported"
	}
	if en.Message != "" {
		s += ": " + en.Message
	}
	switch en.RolloutState {
	case "":
		s += "; the rollout has not finished"
	case string(workflows.StateCompleted):
		s += "; the rollout completed"
	case string(workflows.StateAborted):
		s += "; the rollout was aborted"
	case string(workflows.StateFailed):
		s += "; the rollout failed"
	default:
		s += "; the rollout ended " + en.RolloutState
	}
	return s
}

// renderHistory prints the rollouts that touched a cluster, oldest first.
func renderHistory(w io.Writer, clusterID string, entries []events.Entry) {
	if len(entries) == 0 {
		fmt.Fprintf(w, "No rollout in %s touched %s.\n", workflows.EventsTopic, clusterID)
		return
	}
	fmt.Fprintf(w, "%s: %d %s touched it (oldest first).\n", clusterID, len(entries), pluralize(len(entries), "rollout", "rollouts"))
	for _, en := range entries {
		name := workflows.RolloutName(en.RolloutID)
		fmt.Fprintf(w, "\n%s -> %s\n", name, orDash(en.Version))
		kv := newTable(w, 2)
		fmt.Fprintf(kv, "  Outcome:\t%s\n", outcomeText(en))
		when := formatTime(en.First)
		if !en.Last.Equal(en.First) {
			when += " to " + formatTime(en.Last) + " (" + formatDuration(en.Last.Sub(en.First)) + ")"
		}
		fmt.Fprintf(kv, "  When:\t%s\n", when)
		if en.Phase != "" || en.Batch != 0 {
			where := []string{}
			if en.Phase != "" {
				where = append(where, "phase "+en.Phase)
			}
			if en.Batch != 0 {
				where = append(where, fmt.Sprintf("batch %d", en.Batch))
			}
			fmt.Fprintf(kv, "  Where:\t%s\n", strings.Join(where, ", "))
		}
		if len(en.Alerts) == 0 {
			fmt.Fprintf(kv, "  Alerts:\tnone\n")
		}
		kv.Flush()
		if len(en.Alerts) > 0 {
			fmt.Fprintf(w, "  Alerts (%d):\n", len(en.Alerts))
			tw := newTable(w, 2)
			for _, a := range en.Alerts {
				fmt.Fprintf(tw, "    %s\t%s\t%s\n", formatTime(a.At), orDash(a.Monitor), a.Message)
			}
			tw.Flush()
		}
	}
}
