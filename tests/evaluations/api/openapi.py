"""The OpenAPI schema the app serves, loaded for Schemathesis."""

from __future__ import annotations

from typing import Any

import schemathesis

from config.wsgi import application

# Uploads are judged by their bytes, which a schema cannot describe: a
# schema-valid upload may be refused (an image is still "binary"), and a
# "schema-violating" file part is still just bytes that may well be text.
CONFIG = schemathesis.Config.from_dict(
    {
        "operations": [
            {
                "include-path": "/v1/upload",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["201", "400", "401", "413", "415"]
                    },
                    "negative_data_rejection": {"enabled": False},
                },
            }
        ]
    }
)


def load_schema() -> Any:
    return schemathesis.openapi.from_wsgi("/v1/schema", application, config=CONFIG)
