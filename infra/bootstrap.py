"""Create Herald's AWS resources on an emulator by reading template.yaml.

The template is the one source of truth: every table, queue, secret and bucket it declares is
created here with the same keys, indexes, TTL and redrive policies, under `<prefix>-<LogicalId>`
names. The functions' environment is resolved the way CloudFormation would (Ref, Fn::GetAtt,
Fn::Sub over the resources created and the parameters' defaults).

    python infra/bootstrap.py --endpoint-url http://127.0.0.1:4566 --prefix herald \
        --print-env --manifest .herald/manifest.json

`--print-env` prints KEY=VALUE lines: the global function environment plus
`HERALD_QUEUE_URL_<LOGICAL_ID>` for every queue. `--manifest` writes what the local Lambda
runner and event-source emulator need: each function's binary, timeout, memory size,
environment and event sources.
Running it twice with the same prefix is harmless.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT = "123456789012"
# The tag naming the kind of a secret Herald owns and rotates (herald_domain::secrets).
OWNED_SECRET_TAG = "herald:secret-kind"
ROOT = Path(__file__).resolve().parent.parent


class Unresolved(Exception):
    """A reference to a resource not created yet (or never: e.g. an alarm topic)."""


# --------------------------------------------------------------------------- template


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short-form tags into their long form."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return yaml.load(f, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def snake(name: str) -> str:
    """PublishDeadLetterQueue -> PUBLISH_DEAD_LETTER_QUEUE."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


# --------------------------------------------------------------------------- resolution


class Stack:
    def __init__(self, template: dict[str, Any], prefix: str, overrides: dict[str, str]):
        self.template = template
        self.prefix = prefix
        self.params = {
            name: str(overrides.get(name, spec.get("Default", "")))
            for name, spec in template.get("Parameters", {}).items()
        }
        self.list_params = {
            name
            for name, spec in template.get("Parameters", {}).items()
            if spec.get("Type") == "CommaDelimitedList"
        }
        self.refs: dict[str, str] = {}  # logical id -> Ref value
        self.attrs: dict[tuple[str, str], str] = {}  # (logical id, attribute) -> value
        self.owned_secrets: dict[str, dict[str, str]] = {}  # logical id -> arn, kind

    def name_of(self, logical_id: str) -> str:
        return f"{self.prefix}-{logical_id}"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                return self._getatt(*arg)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                sep, parts = arg
                # The list may itself be a Ref to a CommaDelimitedList parameter.
                resolved = self.resolve(parts)
                return sep.join(str(p) for p in resolved)
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": self.prefix,
            "AWS::Partition": "aws",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            if name in self.list_params:
                return [v.strip() for v in self.params[name].split(",")]
            return self.params[name]
        if name in self.refs:
            return self.refs[name]
        raise Unresolved(name)

    def _getatt(self, logical_id: str, attribute: str) -> str:
        try:
            return self.attrs[(logical_id, attribute)]
        except KeyError:
            raise Unresolved(f"{logical_id}.{attribute}") from None

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                return self._getatt(*name.split(".", 1))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", one, text)


# --------------------------------------------------------------------------- creators


def create_table(stack: Stack, aws: dict[str, Any], logical_id: str, props: dict[str, Any]) -> None:
    ddb = aws["dynamodb"]
    name = stack.name_of(logical_id)
    args: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("StreamSpecification"):
        args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    try:
        ddb.create_table(**args)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceInUseException":
            raise
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        try:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        except ClientError as e:  # already enabled on a second run
            if e.response["Error"]["Code"] != "ValidationException":
                raise
    if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        try:
            ddb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        except ClientError as e:  # the local DynamoDB (dynoxide) has no backups to turn on
            if e.response["Error"]["Code"] != "UnknownOperationException":
                raise
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    stack.refs[logical_id] = name
    stack.attrs[(logical_id, "Arn")] = arn


QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
)


def create_queue(stack: Stack, aws: dict[str, Any], logical_id: str, props: dict[str, Any]) -> None:
    sqs = aws["sqs"]
    name = stack.name_of(logical_id) + (".fifo" if props.get("FifoQueue") else "")
    attributes = {k: str(props[k]) for k in QUEUE_ATTRIBUTES if k in props}
    if props.get("FifoQueue"):
        attributes["FifoQueue"] = "true"
    if "RedrivePolicy" in props:
        policy = props["RedrivePolicy"]
        attributes["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": policy["deadLetterTargetArn"],
                "maxReceiveCount": int(policy["maxReceiveCount"]),
            }
        )
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    # create_queue keeps an existing queue's attributes; make a second run converge.
    if attributes:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.refs[logical_id] = url
    stack.attrs[(logical_id, "Arn")] = arn
    stack.attrs[(logical_id, "QueueName")] = name
    stack.attrs[(logical_id, "QueueUrl")] = url


def create_secret(stack: Stack, aws: dict[str, Any], logical_id: str, props: dict[str, Any]) -> None:
    sm = aws["secretsmanager"]
    name = props.get("Name") or stack.name_of(logical_id)
    generate = props.get("GenerateSecretString")
    if "SecretString" in props:
        value = props["SecretString"]
    elif generate:
        length = int(generate.get("PasswordLength", 32))
        excluded = generate.get("ExcludeCharacters", "")
        value = sm.get_random_password(
            PasswordLength=length,
            ExcludeCharacters=excluded,
            ExcludePunctuation=bool(generate.get("ExcludePunctuation", False)),
        )["RandomPassword"]
        if generate.get("SecretStringTemplate") and generate.get("GenerateStringKey"):
            document = json.loads(generate["SecretStringTemplate"])
            document[generate["GenerateStringKey"]] = value
            value = json.dumps(document)
    else:
        # No value: a secret Herald owns gets its first one from its rotation (the local stack
        # runs the rotation function once, as the template's RotateImmediatelyOnUpdate does).
        value = None
    tags = [{"Key": str(tag["Key"]), "Value": str(tag["Value"])} for tag in props.get("Tags", [])]
    request: dict[str, Any] = {"Name": name, "Tags": tags}
    if value is not None:
        request["SecretString"] = value
    try:
        arn = sm.create_secret(**request)["ARN"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceExistsException":
            raise
        arn = sm.describe_secret(SecretId=name)["ARN"]
    stack.refs[logical_id] = arn
    stack.attrs[(logical_id, "Id")] = arn
    kind = next((tag["Value"] for tag in tags if tag["Key"] == OWNED_SECRET_TAG), None)
    if kind:
        stack.owned_secrets[logical_id] = {"arn": arn, "kind": kind}


def bucket_encryption(props: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's BucketEncryption as S3's PutBucketEncryption wants it."""
    rules = []
    for rule in props["ServerSideEncryptionConfiguration"]:
        unknown = set(rule) - {"ServerSideEncryptionByDefault", "BucketKeyEnabled"}
        if unknown:
            raise SystemExit(f"bootstrap cannot apply bucket encryption field(s) {sorted(unknown)}")
        api: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
        if "BucketKeyEnabled" in rule:
            api["BucketKeyEnabled"] = bool(rule["BucketKeyEnabled"])
        rules.append(api)
    return {"Rules": rules}


CORS_FIELDS = {
    "AllowedMethods": "AllowedMethods",
    "AllowedOrigins": "AllowedOrigins",
    "AllowedHeaders": "AllowedHeaders",
    "ExposedHeaders": "ExposeHeaders",
    "MaxAge": "MaxAgeSeconds",
    "Id": "ID",
}


def bucket_cors(props: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's CorsConfiguration (CorsRules, MaxAge) as S3's API wants it."""
    rules = []
    for rule in props["CorsRules"]:
        unknown = set(rule) - set(CORS_FIELDS)
        if unknown:
            raise SystemExit(f"bootstrap cannot apply CORS field(s) {sorted(unknown)}")
        api = {CORS_FIELDS[k]: v for k, v in rule.items()}
        if "MaxAgeSeconds" in api:
            api["MaxAgeSeconds"] = int(api["MaxAgeSeconds"])
        rules.append(api)
    return {"CORSRules": rules}


LIFECYCLE_FIELDS = {"Id", "Status", "Prefix", "ExpirationInDays", "AbortIncompleteMultipartUpload"}


def bucket_lifecycle(props: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's LifecycleConfiguration as S3's PutBucketLifecycleConfiguration wants it
    (the fields Herald's template uses; anything else is refused rather than dropped)."""
    rules = []
    for rule in props["Rules"]:
        unknown = set(rule) - LIFECYCLE_FIELDS
        if unknown:
            raise SystemExit(f"bootstrap cannot apply lifecycle field(s) {sorted(unknown)}")
        api: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
        if "Id" in rule:
            api["ID"] = rule["Id"]
        if "ExpirationInDays" in rule:
            api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if "AbortIncompleteMultipartUpload" in rule:
            days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
        rules.append(api)
    return {"Rules": rules}


def create_bucket(stack: Stack, aws: dict[str, Any], logical_id: str, props: dict[str, Any]) -> None:
    """The bucket with its encryption, public access block, ownership, CORS and lifecycle.
    (A bucket *policy* is a separate resource and is not applied: the emulator speaks plain
    HTTP, which the template's TLS-only policy would refuse.)"""
    s3 = aws["s3"]
    name = (props.get("BucketName") or stack.name_of(logical_id)).lower()
    try:
        s3.create_bucket(Bucket=name)
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    if props.get("BucketEncryption"):
        s3.put_bucket_encryption(
            Bucket=name, ServerSideEncryptionConfiguration=bucket_encryption(props["BucketEncryption"])
        )
    if props.get("PublicAccessBlockConfiguration"):
        block = {k: bool(v) for k, v in props["PublicAccessBlockConfiguration"].items()}
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
    if props.get("OwnershipControls"):
        s3.put_bucket_ownership_controls(
            Bucket=name, OwnershipControls={"Rules": props["OwnershipControls"]["Rules"]}
        )
    if props.get("CorsConfiguration"):
        s3.put_bucket_cors(Bucket=name, CORSConfiguration=bucket_cors(props["CorsConfiguration"]))
    if props.get("LifecycleConfiguration"):
        s3.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration=bucket_lifecycle(props["LifecycleConfiguration"])
        )
    stack.refs[logical_id] = name
    stack.attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
    stack.attrs[(logical_id, "DomainName")] = f"{name}.s3.amazonaws.com"


def create_topic(stack: Stack, aws: dict[str, Any], logical_id: str, props: dict[str, Any]) -> None:
    arn = aws["sns"].create_topic(Name=stack.name_of(logical_id))["TopicArn"]
    stack.refs[logical_id] = arn
    stack.attrs[(logical_id, "TopicName")] = stack.name_of(logical_id)


def create_key(stack: Stack, aws: dict[str, Any], logical_id: str, props: dict[str, Any]) -> None:
    # The local stack encrypts nothing with it (the alarm topic's key): a reference is enough.
    arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{stack.name_of(logical_id)}"
    stack.refs[logical_id] = arn
    stack.attrs[(logical_id, "Arn")] = arn


CREATORS = {
    "AWS::KMS::Key": create_key,
    "AWS::DynamoDB::Table": create_table,
    "AWS::SQS::Queue": create_queue,
    "AWS::SecretsManager::Secret": create_secret,
    "AWS::S3::Bucket": create_bucket,
    "AWS::SNS::Topic": create_topic,
}


def create_resources(stack: Stack, aws: dict[str, Any]) -> list[str]:
    """Creates every supported resource, in dependency order; returns the logical ids."""
    pending = {
        logical_id: spec
        for logical_id, spec in stack.template["Resources"].items()
        if spec["Type"] in CREATORS
    }
    created: list[str] = []
    while pending:
        progressed = False
        for logical_id, spec in list(pending.items()):
            try:
                props = stack.resolve(spec.get("Properties", {}))
            except Unresolved:
                continue
            CREATORS[spec["Type"]](stack, aws, logical_id, props)
            created.append(logical_id)
            del pending[logical_id]
            progressed = True
        if not progressed:
            raise SystemExit(f"cannot resolve the references of: {', '.join(sorted(pending))}")
    return created


# --------------------------------------------------------------------------- functions


def function_manifest(stack: Stack) -> dict[str, Any]:
    """Each function's binary, timeout, memory size, resolved environment and event sources."""
    template = stack.template
    global_fn = template.get("Globals", {}).get("Function", {})
    global_env = global_fn.get("Environment", {}).get("Variables", {})
    functions = {}
    for logical_id, spec in template["Resources"].items():
        if spec["Type"] != "AWS::Serverless::Function":
            continue
        props = spec.get("Properties", {})
        binary = spec.get("Metadata", {}).get("BuildProperties", {}).get("Binary", logical_id)
        env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        events = []
        for event_id, event in props.get("Events", {}).items():
            p = event.get("Properties", {})
            if event["Type"] == "SQS":
                arn = stack.resolve(p["Queue"])
                url = next(
                    stack.refs[lid]
                    for (lid, attribute), value in stack.attrs.items()
                    if attribute == "Arn" and value == arn
                )
                events.append(
                    {
                        "id": event_id,
                        "type": "sqs",
                        "queue_url": url,
                        "queue_arn": arn,
                        "batch_size": int(p.get("BatchSize", 10)),
                        "batching_window_seconds": int(p.get("MaximumBatchingWindowInSeconds", 0)),
                        "report_batch_item_failures": "ReportBatchItemFailures"
                        in p.get("FunctionResponseTypes", []),
                    }
                )
            elif event["Type"] == "Schedule":
                events.append({"id": event_id, "type": "schedule", "schedule": p["Schedule"]})
            elif event["Type"] in ("HttpApi", "Api"):
                events.append(
                    {
                        "id": event_id,
                        "type": "http",
                        "path": p.get("Path", "/{proxy+}"),
                        "method": p.get("Method", "ANY").upper(),
                    }
                )
        functions[logical_id] = {
            "binary": binary,
            "timeout": int(props.get("Timeout", global_fn.get("Timeout", 3))),
            "memory": int(props.get("MemorySize", global_fn.get("MemorySize", 128))),
            "environment": {k: str(stack.resolve(v)) for k, v in env.items()},
            "events": events,
        }
    return {"functions": functions, "global_environment": {k: str(stack.resolve(v)) for k, v in global_env.items()}}


def clients(endpoint: str, dynamodb_endpoint: str | None = None) -> dict[str, Any]:
    """Clients of the emulated services at `endpoint`; DynamoDB at its own endpoint if given."""
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
    )
    cfg = Config(retries={"max_attempts": 3, "mode": "standard"})
    endpoints = {"dynamodb": dynamodb_endpoint or endpoint}
    return {
        name: session.client(name, endpoint_url=endpoints.get(name, endpoint), config=cfg)
        for name in ("dynamodb", "sqs", "secretsmanager", "s3", "sns")
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--dynamodb-endpoint-url", help="DynamoDB's own endpoint (default: --endpoint-url)")
    parser.add_argument("--prefix", default="herald")
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--print-env", action="store_true")
    parser.add_argument("--manifest", type=Path)
    args = parser.parse_args(argv)

    overrides = dict(p.split("=", 1) for p in args.parameter)
    stack = Stack(load_template(args.template), args.prefix, overrides)
    create_resources(stack, clients(args.endpoint_url, args.dynamodb_endpoint_url))
    manifest = function_manifest(stack)
    queues = {
        f"HERALD_QUEUE_URL_{snake(lid)}": url
        for (lid, attribute), url in stack.attrs.items()
        if attribute == "QueueUrl"
    }
    manifest["queues"] = queues
    manifest["owned_secrets"] = stack.owned_secrets
    if args.manifest:
        args.manifest.parent.mkdir(parents=True, exist_ok=True)
        args.manifest.write_text(json.dumps(manifest, indent=2) + "\n")
    if args.print_env:
        for key, value in {**manifest["global_environment"], **queues}.items():
            print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
