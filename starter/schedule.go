package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleet-rollout/fleet/internal/spec"
)

func parseAt(s string, now time.Time) (time.Time, error) { return time.Time{}, errors.New("todo") }

func scheduleStart(ctx context.Context, e *env, api rollouts, r *spec.Rollout, user string, when time.Time, at string) error {
	return errors.New("todo")
}

func scheduleCommand(e *env) *cobra.Command { return &cobra.Command{Use: "schedule", Hidden: true} }
