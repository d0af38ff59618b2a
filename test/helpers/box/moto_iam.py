"""
moto_server for the pipeline in a box: moto 5 with its IAM enforcement made to
judge identity policies the way AWS does for the calls this project makes.

moto checks the Resource of a statement only for S3, SQS and IAM calls; for
every other service it asks about "*", so a grant scoped to one topic, secret or
table never matches and every such call is denied. This launcher gives SNS,
Secrets Manager, DynamoDB and KMS the resource AWS authorizes, maps calls to the
IAM action AWS checks (PublishBatch is sns:Publish, HeadBucket is s3:ListBucket,
SendMessageBatch is sqs:SendMessage...), treats a statement whose Condition it
cannot evaluate as not applying (moto denies outright), words AccessDenied as
AWS does (action and resource), and reports every denial on stderr as one line
`BOX-DENIED {json}` for the harness. Two of S3's own rules are added: a
PutObject or CreateMultipartUpload that carries tags also needs
s3:PutObjectTagging, and a GET or HEAD of a key that does not exist is 403, not
404, for a caller without s3:ListBucket. It checks SigV4 signatures against the
request as sent (moto signs werkzeug's re-quoted URL, so keys with `+`, `%` or
non-ASCII and query values with `/` fail their check). It also reuses one
signing key for SNS envelopes (moto makes a 2048-bit RSA key per delivered
message).

Usage: python3 moto_iam.py -H 127.0.0.1 -p PORT (INITIAL_NO_AUTH_ACTION_COUNT in the environment).
"""
import json
from pathlib import Path
import sys
import threading
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from moto import server
from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError, _RESTError
from moto.core.responses import BaseResponse
from moto.dynamodb.responses import DynamoHandler
from moto.iam import access_control
from moto.kms.responses import KmsResponse
from moto.s3.exceptions import S3AccessDeniedError, S3ClientError
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.sns import models as sns_models
from moto.sns.responses import SNSResponse

# DynamoDB writes atomic, as the local emulator has them (lambdas/local/moto_atomic_dynamodb.py): without it, two
# parters counting an upload's last two parts at once could leave the count one short, and the upload open.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "lambdas" / "local"))
import moto_atomic_dynamodb  # noqa: E402,F401

# The IAM action AWS authorizes a call by, where it is not the call's own name.
ACTION_ALIASES = {
    "sns:PublishBatch": "sns:Publish",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
}


def arn(self, service, resource):
    return f"arn:aws:{service}:{self.region}:{self.current_account}:{resource}"


def sns_resource(self):
    return self._get_param("TopicArn") or self._get_param("TargetArn") or "*"


def secret_resource(self):
    secret_id = self._get_param("SecretId")
    if not secret_id:
        return "*"
    if secret_id.startswith("arn:"):
        return secret_id
    try:
        return self.backend.describe_secret(secret_id).arn
    except Exception:
        return arn(self, "secretsmanager", f"secret:{secret_id}")


def kms_resource(self):
    key_id = self._get_param("KeyId")
    if not key_id:
        return "*"
    if key_id.startswith("arn:"):
        return key_id
    if key_id.startswith("alias/"):
        return arn(self, "kms", key_id)
    return arn(self, "kms", f"key/{key_id}")


def dynamodb_resources(self):
    params = getattr(self, "params", None) or {}
    names = []
    if params.get("TableName"):
        table = f"table/{params['TableName']}"
        names.append(f"{table}/index/{params['IndexName']}" if params.get("IndexName") else table)
    for name in (params.get("RequestItems") or {}).keys():
        names.append(f"table/{name}")
    for item in params.get("TransactItems") or []:
        for op in item.values():
            if isinstance(op, dict) and op.get("TableName"):
                names.append(f"table/{op['TableName']}")
    return [arn(self, "dynamodb", n) for n in dict.fromkeys(names)] or ["*"]


SNSResponse._determine_resource = sns_resource
SecretsManagerResponse._determine_resource = secret_resource
KmsResponse._determine_resource = kms_resource

_authorize = DynamoHandler._authenticate_and_authorize_normal_action


# A transaction has no IAM action of its own: each of its items is authorized as the single-item call it is
# (PutItem, UpdateItem, DeleteItem, ConditionCheckItem, GetItem), on its own table.
TRANSACT_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
_action_override = threading.local()


def dynamodb_authorize(self, resource="*"):
    params = getattr(self, "params", None) or {}
    items = params.get("TransactItems")
    if items:
        for item in items:
            for kind, op in item.items():
                if not isinstance(op, dict) or not op.get("TableName"):
                    continue
                _action_override.action = TRANSACT_ITEM_ACTIONS.get(kind)
                try:
                    _authorize(self, arn(self, "dynamodb", f"table/{op['TableName']}"))
                finally:
                    _action_override.action = None
        return
    # A batch touches several tables: each must be allowed.
    for each in dynamodb_resources(self):
        _authorize(self, each)


DynamoHandler._authenticate_and_authorize_normal_action = dynamodb_authorize

_init = access_control.IAMRequestBase.__init__


def init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self._action = getattr(_action_override, "action", None) or ACTION_ALIASES.get(self._action, self._action)


access_control.IAMRequestBase.__init__ = init

_check = access_control.IAMRequestBase.check_action_permitted


def check(self, resource):
    self._box_resource = resource
    _check(self, resource)


access_control.IAMRequestBase.check_action_permitted = check


def denial(self):
    return report_denial(self._access_key.arn, self._action, getattr(self, "_box_resource", "*"), getattr(self, "_box_why", ""))


def report_denial(user, action, resource, why=""):
    sys.stderr.write("BOX-DENIED " + json.dumps({"user": user, "action": action, "resource": resource}) + "\n")
    sys.stderr.flush()
    return (
        f"User: {user} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action{' ' + why if why else ''}"
    )


def is_json(self):
    return "json" in (self._headers.get("Content-Type") or self._headers.get("content-type") or "")


# What each service calls the error, as its SDK parses it.
DENIED_CODES = {"sns": "AuthorizationError", "sqs": "AccessDenied", "iam": "AccessDenied", "sts": "AccessDenied"}


class BoxAccessDenied(JsonRESTError):
    code = 403

    def __init__(self, error_type, message, as_json):
        super().__init__(error_type, message)
        if not as_json:
            _RESTError.__init__(self, error_type, message)

    def get_headers(self, *args, **kwargs):
        # The SQS JSON protocol takes the error code from this header (awsQueryCompatible).
        return super().get_headers(*args, **kwargs) + [("x-amzn-query-error", f"{self.error_type};Sender")]


def raise_denied(self):
    code = DENIED_CODES.get(self._service, "AccessDeniedException")
    raise BoxAccessDenied(code, denial(self), is_json(self))


def jsonify(raiser):
    def wrapped(self, *args):
        try:
            raiser(self, *args)
        except _RESTError as error:
            raise error.to_json() if is_json(self) else error

    return wrapped


access_control.IAMRequest._raise_signature_does_not_match = jsonify(access_control.IAMRequest._raise_signature_does_not_match)
access_control.IAMRequest._raise_invalid_access_key = jsonify(access_control.IAMRequest._raise_invalid_access_key)


class BoxS3AccessDenied(S3AccessDeniedError):
    def __init__(self, message):
        S3ClientError.__init__(self, "AccessDenied", message)


def raise_s3_denied(self):
    raise BoxS3AccessDenied(denial(self))


access_control.IAMRequest._raise_access_denied = raise_denied
access_control.S3IAMRequest._raise_access_denied = raise_s3_denied

_statement_permitted = access_control.IAMPolicyStatement.is_action_permitted


def statement_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
    # An identity policy's condition (kms:ViaService...) cannot be evaluated here: the statement
    # neither allows nor denies, so a call that needs it fails (moto would deny even a conditional Allow).
    if incoming_condition_values is None and principal is None and self._statement.get("Condition"):
        return access_control.PermissionResult.NEUTRAL
    return _statement_permitted(self, action, resource, principal, incoming_condition_values)


access_control.IAMPolicyStatement.is_action_permitted = statement_permitted

_setup_class = BaseResponse.setup_class


def setup_class(self, request, full_url, headers, *args, **kwargs):
    environ = getattr(request, "environ", None)
    self._box_raw_uri = environ.get("RAW_URI") if environ else None
    return _setup_class(self, request, full_url, headers, *args, **kwargs)


BaseResponse.setup_class = setup_class


def canonical_query(query):
    # As AWS canonicalizes it: each name and value decoded, then URI-encoded once (RFC 3986 unreserved kept).
    pairs = []
    for pair in query.split("&") if query else []:
        name, sep, value = pair.partition("=")
        pairs.append(quote(unquote(name), safe="-_.~") + sep + quote(unquote(value), safe="-_.~"))
    return "&".join(pairs)


_authenticate = ActionAuthenticatorMixin._authenticate_and_authorize_action


def authenticate(self, iam_request_cls, resource="*"):
    raw = getattr(self, "_box_raw_uri", None)
    if not raw:
        return _authenticate(self, iam_request_cls, resource)
    sent = urlsplit(raw)
    seen = urlsplit(self.uri)
    saved = self.uri
    self.uri = urlunsplit((seen.scheme, seen.netloc, sent.path, canonical_query(sent.query), ""))
    try:
        _authenticate(self, iam_request_cls, resource)
        if iam_request_cls is access_control.S3IAMRequest and enforcing():
            s3_rules(self, resource)
    finally:
        self.uri = saved


def enforcing():
    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def check_also(self, action, resource, why=""):
    """Authorize the request as if it were `action` on `resource` (its signature was checked already)."""
    parsed = urlsplit(self.uri)
    request = access_control.S3IAMRequest(
        account_id=self.current_account,
        method=self.method,
        path=parsed.path + ("?" + parsed.query if parsed.query else ""),
        data=self.data,
        body=self.raw_body,
        headers=self.headers,
        action=action,
    )
    request._box_why = why
    request.check_action_permitted(resource)


def s3_rules(self, resource):
    action = self.data.get("Action")
    headers = {k.lower(): v for k, v in self.headers.items()}
    if action == "PutObject" and headers.get("x-amz-tagging") and self.method in ("PUT", "POST"):
        check_also(self, "PutObjectTagging", resource)
    if action == "GetObject" and self.method in ("GET", "HEAD") and ":::" in resource and "/" in resource.split(":::", 1)[1]:
        bucket, key = resource.split(":::", 1)[1].split("/", 1)
        try:
            missing = self.backend.get_object(bucket, key) is None
        except Exception:
            return
        if missing:
            why = "(the key does not exist: without s3:ListBucket S3 answers 403, not 404)"
            check_also(self, "ListBucket", f"arn:aws:s3:::{bucket}", why)


ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate

_signing_key = []


def private_key(self):
    if not _signing_key:
        _signing_key.append(_private_key(self))
    return _signing_key[0]


_private_key = sns_models.Subscription.private_key
sns_models.Subscription.private_key = private_key

if __name__ == "__main__":
    server.main()
