"""Imported first by ``volumed.keys.kms``: grpcio and protobuf are the ``volumed[kms]`` extra, named when
missing."""

from .._extras import require_extra

require_extra("grpc", "google.protobuf", what="the kms key kind (and the KMS server)", extra="kms")
