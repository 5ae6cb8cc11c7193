//go:build deps

// Package tools pins module dependencies during bootstrap.
package tools

import (
	_ "github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	_ "github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/slack-go/slack"
	_ "github.com/slack-go/slack/slacktest"
	_ "github.com/stretchr/testify/require"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "github.com/twmb/franz-go/pkg/kgo"
	_ "go.temporal.io/api/workflowservice/v1"
	_ "go.temporal.io/sdk/client"
	_ "go.temporal.io/sdk/testsuite"
	_ "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	_ "go.temporal.io/server/temporal"
	_ "go.uber.org/zap"
	_ "gopkg.in/yaml.v3"
)
