#!/usr/bin/env bash
# Attach a secret to the single-user function of a deployed stack: rotate every 30 days,
# within a 3-hour window (AWS CLI v2; SECRET and STACK as you named them).
set -euo pipefail
SECRET=${SECRET:-myapp/prod/db}
STACK=${STACK:-pg-rotation}
FUNCTION_ARN=$(aws cloudformation describe-stacks --stack-name "$STACK" \
  --query "Stacks[0].Outputs[?OutputKey=='SingleUserFunctionArn'].OutputValue" --output text)
aws secretsmanager rotate-secret --secret-id "$SECRET" \
  --rotation-lambda-arn "$FUNCTION_ARN" \
  --rotation-rules '{"ScheduleExpression": "rate(30 days)", "Duration": "3h"}'
