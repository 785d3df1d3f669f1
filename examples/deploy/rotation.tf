# Attach a secret to a function deployed by template.yaml (its SingleUserFunctionArn or
# MultiUserFunctionArn output).
resource "aws_secretsmanager_secret_rotation" "db" {
  secret_id           = aws_secretsmanager_secret.db.id
  rotation_lambda_arn = var.single_user_function_arn
  rotation_rules {
    schedule_expression = "rate(30 days)"
  }
}
