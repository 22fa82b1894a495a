# What moto lacks of the AWS APIs wsstack calls, added before the server starts: the launcher
# puts this file, as sitecustomize.py, first on the server's PYTHONPATH, and Python imports it at
# start-up. Without moto (a wrapper's own Python, say) it adds nothing.
import json

try:
    from moto.apigatewayv2.responses import ApiGatewayV2Response
except ImportError:
    ApiGatewayV2Response = None


def get_route_responses(self):
    # GET /v2/apis/{apiId}/routes/{routeId}/routeresponses: moto stores route responses
    # (CreateRouteResponse, GetRouteResponse) but cannot list them. One page: no NextToken.
    parts = self.path.split("?")[0].rstrip("/").split("/")
    api_id, route_id = parts[-4], parts[-2]
    route = self.apigatewayv2_backend.get_route(api_id, route_id)
    items = [response.to_json() for response in route.route_responses.values()]
    return 200, {}, json.dumps({"items": items})


if ApiGatewayV2Response is not None:
    ApiGatewayV2Response.get_route_responses = get_route_responses


# IpAddressType of an API (ipv4, the default, or dualstack): moto neither keeps nor returns it.
# CreateApi and UpdateApi store it on the model, every answer carrying the API shows it.
try:
    from moto.apigatewayv2.models import Api as _Api
except ImportError:
    _Api = None


def _with_ip_address_type(handler):
    def wrapped(self):
        status, headers, body = handler(self)
        requested = json.loads(self.body or "{}").get("ipAddressType")
        answer = json.loads(body)
        if requested is not None and "apiId" in answer:
            api = self.apigatewayv2_backend.get_api(answer["apiId"])
            api.ip_address_type = requested
            answer["ipAddressType"] = requested
            body = json.dumps(answer)
        return status, headers, body

    return wrapped


if ApiGatewayV2Response is not None and _Api is not None:
    _api_to_json = _Api.to_json

    def _api_json(self):
        answer = _api_to_json(self)
        answer["ipAddressType"] = getattr(self, "ip_address_type", "ipv4")
        return answer

    _Api.to_json = _api_json
    ApiGatewayV2Response.create_api = _with_ip_address_type(ApiGatewayV2Response.create_api)
    ApiGatewayV2Response.update_api = _with_ip_address_type(ApiGatewayV2Response.update_api)


# Stages. moto has no UpdateStage and no DeleteRouteSettings, and enables access logging on any
# account. As API Gateway does: UpdateStage changes the fields it is given (defaultRouteSettings and
# accessLogSettings as a whole, routeSettings per route key) and keeps the others;
# DeleteRouteSettings drops one route key's settings; a stage with an access log destination needs
# the account's CloudWatch Logs role (API Gateway v1 UpdateAccount /cloudwatchRoleArn), else
# CreateStage and UpdateStage answer 400 BadRequestException with API Gateway's own message.
try:
    from moto.apigatewayv2.exceptions import BadRequestException as _BadRequest
    from moto.apigateway.models import apigateway_backends as _v1_backends
    import moto.apigatewayv2.urls as _v2_urls
    from urllib.parse import unquote as _unquote
except ImportError:
    _BadRequest = None


def _require_logging_role(self, config):
    destination = (config.get("accessLogSettings") or {}).get("destinationArn")
    if destination and not _v1_backends[self.current_account][self.region].account.cloudwatch_role_arn:
        raise _BadRequest("CloudWatch Logs role ARN must be set in account settings to enable logging")


def _create_stage_checked(handler):
    def wrapped(self):
        _require_logging_role(self, json.loads(self.body or "{}"))
        return handler(self)

    return wrapped


def update_stage(self):
    parts = self.path.split("?")[0].rstrip("/").split("/")
    api_id, stage_name = parts[-3], _unquote(parts[-1])
    stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)
    config = json.loads(self.body or "{}")
    _require_logging_role(self, config)
    if "defaultRouteSettings" in config:
        stage.default_route_settings = config["defaultRouteSettings"]
    if "accessLogSettings" in config:
        stage.access_log_settings = config["accessLogSettings"]
    for key, settings in (config.get("routeSettings") or {}).items():
        stage.route_settings[key] = settings
    if "autoDeploy" in config:
        stage.auto_deploy = config["autoDeploy"]
    if "description" in config:
        stage.description = config["description"]
    if "stageVariables" in config:
        stage.stage_variables = config["stageVariables"]
    return 200, {}, json.dumps(stage.to_json())


def delete_route_settings(self):
    parts = self.path.split("?")[0].rstrip("/").split("/")
    api_id, stage_name, route_key = parts[-5], _unquote(parts[-3]), _unquote(parts[-1])
    stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)
    stage.route_settings.pop(route_key, None)
    return 204, {}, ""


if ApiGatewayV2Response is not None and _BadRequest is not None:
    ApiGatewayV2Response.create_stage = _create_stage_checked(ApiGatewayV2Response.create_stage)
    ApiGatewayV2Response.update_stage = update_stage
    ApiGatewayV2Response.delete_route_settings = delete_route_settings
    _v2_urls.url_paths[
        "{0}/v2/apis/(?P<api_id>[^/]+)/stages/(?P<stage_name>[^/]+)/routesettings/(?P<route_key>[^/]+)$"
    ] = ApiGatewayV2Response.dispatch


def delete_access_log_settings(self):
    parts = self.path.split("?")[0].rstrip("/").split("/")
    api_id, stage_name = parts[-4], _unquote(parts[-2])
    stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)
    stage.access_log_settings = None
    return 204, {}, ""


if ApiGatewayV2Response is not None and _BadRequest is not None:
    ApiGatewayV2Response.delete_access_log_settings = delete_access_log_settings
    _v2_urls.url_paths[
        "{0}/v2/apis/(?P<api_id>[^/]+)/stages/(?P<stage_name>[^/]+)/accesslogsettings$"
    ] = ApiGatewayV2Response.dispatch


# DynamoDB Query, fast at wsstack dev's scale: moto's Table.query reads Table.all_items(), which
# sorts the whole table (hash key, then range key) on every call, then keeps the items of one
# partition (a table Query) or filters them on the index's keys (an index Query) and sorts those
# again by the key order the answer needs. At 15,000 subscribers (30,000 items) one connection's
# Query took 300 ms and the subscriber Query 4.5 s (moto/bench/query.py), so a mass disconnect ran
# for hours. The first sort is wasted: Query sorts its candidates itself by a total order (the
# index's keys, then the table's, which are unique), so the answer is the same whatever order they
# come in. During a Query (this thread only: moto serves requests on several threads, and a Scan
# elsewhere still gets the sorted list), all_items gives the items unsorted, and a table Query only
# its own partition's. Nothing changes in what the answer holds or in its order.
import threading

try:
    from moto.dynamodb.models.table import Table as _Table
except ImportError:
    _Table = None

_querying = threading.local()

if _Table is not None:
    _all_items = _Table.all_items
    _table_query = _Table.query

    def _query_items(self):
        scope = getattr(_querying, "scope", None)
        if scope is None or scope[0] is not self:
            return _all_items(self)
        _table, partition = scope
        if partition is not None:
            bucket = self.items.get(partition)
            if bucket is None:
                return []
            return list(bucket.values()) if self.range_key_attr else [bucket]
        items = []
        for bucket in self.items.values():
            if self.range_key_attr:
                items.extend(bucket.values())
            else:
                items.append(bucket)
        return items

    def _query(self, hash_key, *args, **kwargs):
        index_name = kwargs.get("index_name") if len(args) < 7 else args[6]
        # A table Query keeps the items whose hash key equals the one asked for: its partition.
        partition = None if index_name else hash_key
        previous = getattr(_querying, "scope", None)
        _querying.scope = (self, partition)
        try:
            return _table_query(self, hash_key, *args, **kwargs)
        finally:
            _querying.scope = previous

    _Table.all_items = _query_items
    _Table.query = _query


# AWS managed policies: moto loads its copy of all of them only with MOTO_IAM_LOAD_MANAGED_POLICIES
# (about a thousand, for every account); the one `up --set-account-logging-role` attaches,
# AmazonAPIGatewayPushToCloudWatchLogs, exists in every account, as on AWS.
try:
    from moto.iam import models as _iam_models
except ImportError:
    _iam_models = None

_MANAGED = ("AmazonAPIGatewayPushToCloudWatchLogs",)

if _iam_models is not None:
    _init_aws_policies = _iam_models.IAMBackend._init_aws_policies

    def _with_managed_policies(self):
        policies = _init_aws_policies(self)
        known = {p.name for p in policies}
        data = json.loads(_iam_models.aws_managed_policies_data)
        for name in _MANAGED:
            if name not in known and name in data:
                policies.append(
                    _iam_models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data[name])
                )
        return policies

    _iam_models.IAMBackend._init_aws_policies = _with_managed_policies
