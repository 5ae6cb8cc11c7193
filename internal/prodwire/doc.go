// Package prodwire holds the production-wiring test: the production binaries
// (bin/worker without dev, the fleet CLI and fleet-sim) run as separate
// processes, configured exactly as docker-compose.yml configures them, against
// an in-process Temporal server and a Kafka (kfake) that creates no topic by
// itself, and complete a rollout. It stands in for `docker compose up`, which
// needs a Docker engine this project's CI does not have.
package prodwire
