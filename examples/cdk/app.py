"""A CDK app (Python): an RDS instance in isolated subnets, an application user's secret,
and its multi-user rotation with this repository's construct (``pip install
pg-secrets-rotation-cdk``). Synthesize it with ``cdk synth``, or ``python app.py``."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds

from rotation_cdk import PostgresRotation

app = cdk.App()
stack = cdk.Stack(app, "Database")
isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
vpc = ec2.Vpc(
    stack,
    "Vpc",
    nat_gateways=0,
    subnet_configuration=[
        ec2.SubnetConfiguration(name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
    ],
)
# No NAT: the function reaches Secrets Manager (and, for multi-user, the RDS API) here.
for name, service in [
    ("SecretsManager", ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER),
    ("Rds", ec2.InterfaceVpcEndpointAwsService.RDS),
]:
    vpc.add_interface_endpoint(name, service=service)
db = rds.DatabaseInstance(
    stack,
    "Db",
    engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16),
    vpc=vpc,
    vpc_subnets=isolated,
    credentials=rds.Credentials.from_generated_secret("postgres"),
    storage_encrypted=True,
)
master = db.secret
if master is None:  # always set with from_generated_secret; narrows the type
    raise SystemExit("the instance has no generated master secret")
# The application's user: masterarn names the master secret; attach() adds host, port, engine.
app_user = rds.DatabaseSecret(stack, "AppUser", username="app", master_secret=master).attach(db)
rotation = PostgresRotation(
    stack,
    "AppUserRotation",
    secret=app_user,
    strategy="multi-user",
    master_secret=master,
    vpc=vpc,
    vpc_subnets=isolated,
    schedule=cdk.Duration.days(30),
    failure_alarm=True,
)
db.connections.allow_default_port_from(rotation.function)
app.synth()
