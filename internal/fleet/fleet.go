// Package fleet defines the inventory model shared by the planner, the
// simulator and the activities: what a managed cluster is and what it runs.
//
// It has no Temporal or network imports.
package fleet

import "fmt"

// Products the platform manages.
const (
	ProductKafka          = "kafka"
	ProductKsqlDB         = "ksqldb"
	ProductConnect        = "connect"
	ProductSchemaRegistry = "schema-registry"
)

// Clouds.
const (
	CloudAWS   = "aws"
	CloudGCP   = "gcp"
	CloudAzure = "azure"
)

// Environments, in the order a rollout normally visits them.
const (
	EnvInternal = "internal"
	EnvNonProd  = "non-prod"
	EnvProd     = "prod"
)

// Products lists every product, sorted.
var Products = []string{ProductConnect, ProductKafka, ProductKsqlDB, ProductSchemaRegistry}

// Clouds lists every cloud, sorted.
var Clouds = []string{CloudAWS, CloudAzure, CloudGCP}

// Environments lists every environment in rollout order.
var Environments = []string{EnvInternal, EnvNonProd, EnvProd}

// Regions lists the regions the simulated fleet uses per cloud.
var Regions = map[string][]string{
	CloudAWS:   {"us-east-1", "us-west-2", "eu-west-1", "ap-southeast-1"},
	CloudGCP:   {"us-central1", "europe-west1", "asia-east1"},
	CloudAzure: {"eastus", "westeurope", "southeastasia"},
}

// Window is a weekly maintenance window in the cluster's own time zone.
type Window struct {
	// Days are three-letter English weekday names: mon, tue, ... sun.
	Days []string `json:"days" yaml:"days"`
	// Start is the local start time, "HH:MM".
	Start string `json:"start" yaml:"start"`
	// Duration is how long the window stays open, as a Go duration ("2h").
	Duration string `json:"duration" yaml:"duration"`
	// TimeZone is an IANA zone name, e.g. "Europe/Berlin".
	TimeZone string `json:"timeZone" yaml:"timeZone"`
}

// Cluster is one managed cluster as the inventory reports it.
type Cluster struct {
	ID          string `json:"id" yaml:"id"`
	Product     string `json:"product" yaml:"product"`
	Cloud       string `json:"cloud" yaml:"cloud"`
	Region      string `json:"region" yaml:"region"`
	Environment string `json:"environment" yaml:"environment"`
	Customer    string `json:"customer" yaml:"customer"`
	Tier        string `json:"tier" yaml:"tier"`
	Version     string `json:"version" yaml:"version"`
	Brokers     int    `json:"brokers" yaml:"brokers"`
	// Generation is the last spec generation the data plane applied to the
	// cluster. A new change is sent as Generation+1; the data plane ignores
	// any command whose generation it has already applied.
	Generation int64             `json:"generation" yaml:"generation"`
	Labels     map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	// Config is the cluster's applied configuration (the keys rollouts
	// set through target.config).
	Config map[string]string `json:"config,omitempty" yaml:"config,omitempty"`
	Window *Window           `json:"maintenanceWindow,omitempty" yaml:"maintenanceWindow,omitempty"`
}

// Validate reports the first missing or unknown attribute.
func (c Cluster) Validate() error {
	switch {
	case c.ID == "":
		return fmt.Errorf("cluster: id is empty")
	case !contains(Products, c.Product):
		return fmt.Errorf("cluster %s: unknown product %q", c.ID, c.Product)
	case !contains(Clouds, c.Cloud):
		return fmt.Errorf("cluster %s: unknown cloud %q", c.ID, c.Cloud)
	case !contains(Environments, c.Environment):
		return fmt.Errorf("cluster %s: unknown environment %q", c.ID, c.Environment)
	case c.Version == "":
		return fmt.Errorf("cluster %s: version is empty", c.ID)
	case c.Brokers <= 0:
		return fmt.Errorf("cluster %s: brokers must be positive, got %d", c.ID, c.Brokers)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
