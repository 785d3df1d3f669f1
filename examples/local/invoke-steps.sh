#!/usr/bin/env bash
# Rotate a secret on moto's Secrets Manager step by step, as Secrets Manager would invoke
# the function, without Docker: `rotation start` registers the token as RotateSecret does,
# `rotation invoke` runs each step through the template's function. Run from a checkout.
# URL: the emulator; SECRET: the secret's name or ARN; TOKEN: any UUID.
set -euo pipefail
: "${URL:?the emulator, e.g. http://127.0.0.1:5000}" "${SECRET:?a secret name or ARN}"
TOKEN=${TOKEN:-0f5c1e7a-3b1d-4c55-9a0e-6d2f8b7c4a11}
rotation start "$SECRET" --endpoint-url "$URL" --token "$TOKEN"
for step in createSecret setSecret testSecret finishSecret; do
  rotation invoke SingleUserFunction -e "events/$step.json" --env-vars events/env.json \
    --endpoint-url "$URL" --secret-id "$SECRET" --token "$TOKEN"
done
rotation status "$SECRET" --endpoint-url "$URL"   # the token is AWSCURRENT
