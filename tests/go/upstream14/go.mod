module conformance.test/upstream14

go 1.24.2

require (
	github.com/conduitio/conduit v0.14.0
	github.com/conduitio/conduit-connector-file v0.10.3
	github.com/conduitio/conduit-connector-log v0.7.3
	github.com/conduitio/conduit-connector-postgres v0.14.0
	github.com/conduitio/conduit-connector-s3 v0.9.3
	github.com/conduitio/conduit-connector-sdk v0.14.1
)
