module conformance.test/upstream13

go 1.23.2

require (
	github.com/conduitio/conduit v0.13.3
	github.com/conduitio/conduit-connector-file v0.10.1
	github.com/conduitio/conduit-connector-kafka v0.12.1
	github.com/conduitio/conduit-connector-log v0.7.1
	github.com/conduitio/conduit-connector-postgres v0.11.2
	github.com/conduitio/conduit-connector-s3 v0.9.1
	github.com/conduitio/conduit-connector-sdk v0.13.3
)
