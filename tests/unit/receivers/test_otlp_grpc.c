/*
 * test_otlp_grpc.c - the pure parts of the OTLP/gRPC transport (receivers/otlp_grpc.c): how an
 * outcome of the shared request path becomes a gRPC status, and which content-types are gRPC.
 */
#include "unit.h"

#include "otlp_int.h"

UNIT_TEST(otlp_grpc_status_per_otlp_spec)
{
    CHECK(otlp_grpc_status(200, NULL) == GRPC_OK);
    CHECK(otlp_grpc_status(400, "bad_protobuf") == GRPC_INVALID_ARGUMENT);
    CHECK(otlp_grpc_status(400, "bad_tenant") == GRPC_INVALID_ARGUMENT);
    CHECK(otlp_grpc_status(413, "too_large") == GRPC_RESOURCE_EXHAUSTED);
    CHECK(otlp_grpc_status(413, "decode_limit") == GRPC_RESOURCE_EXHAUSTED);
    CHECK(otlp_grpc_status(429, "queue_full") == GRPC_RESOURCE_EXHAUSTED);
    CHECK(otlp_grpc_status(503, "memory_limit") == GRPC_RESOURCE_EXHAUSTED);
    CHECK(otlp_grpc_status(404, "unimplemented") == GRPC_UNIMPLEMENTED);
    CHECK(otlp_grpc_status(404, "unsupported_encoding") == GRPC_UNIMPLEMENTED);
    CHECK(otlp_grpc_status(504, "deadline_exceeded") == GRPC_DEADLINE_EXCEEDED);
    CHECK(otlp_grpc_status(500, "pipeline_error") == GRPC_UNAVAILABLE);
    CHECK(otlp_grpc_status(500, "other") == GRPC_INTERNAL);
    CHECK(otlp_grpc_status(500, NULL) == GRPC_INTERNAL);
}

UNIT_TEST(otlp_grpc_content_types)
{
    CHECK(otlp_grpc_content_type_ok("application/grpc"));
    CHECK(otlp_grpc_content_type_ok("application/grpc+proto"));
    CHECK(otlp_grpc_content_type_ok("Application/GRPC; charset=binary"));
    CHECK(!otlp_grpc_content_type_ok("application/grpc+json"));
    CHECK(!otlp_grpc_content_type_ok("application/grpcx"));
    CHECK(!otlp_grpc_content_type_ok("application/json"));
    CHECK(!otlp_grpc_content_type_ok(""));
    CHECK(!otlp_grpc_content_type_ok(NULL));
}
