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


# DynamoDB writes one at a time, as DynamoDB applies them: moto serves requests on several threads
# and checks a condition, then writes, with nothing in between held, so two conditional writes at
# once could both pass (two events of one stream numbered alike in history.rs's transaction, two
# subscriptions over a connection's maximum), and a read could see half a transaction. One lock
# over every item operation of the backend: moto's Python runs one thread at a time anyway.
try:
    from moto.dynamodb.models import DynamoDBBackend as _DynamoDBBackend
except ImportError:
    _DynamoDBBackend = None

if _DynamoDBBackend is not None:
    _items_lock = threading.RLock()

    def _one_at_a_time(operation):
        def locked(self, *args, **kwargs):
            with _items_lock:
                return operation(self, *args, **kwargs)

        return locked

    for _name in ("put_item", "get_item", "query", "scan", "update_item", "delete_item", "transact_write_items",
                  "transact_get_items", "batch_write_item", "batch_get_item"):
        if hasattr(_DynamoDBBackend, _name):
            setattr(_DynamoDBBackend, _name, _one_at_a_time(getattr(_DynamoDBBackend, _name)))


# TransactWriteItems without copying tables: moto deep-copies every table a transaction names
# before it starts (to roll back by putting the copies in place), so each transaction costs the
# whole table: history.rs numbers every event in one, and 1,000 events on a table of a few thousand
# items grew moto past 12 GB. Here the conditions are all checked first (under the lock above,
# nothing changes in between), a failed one cancels the transaction before anything is written, as
# DynamoDB does; then the writes run, and only the items they touch are kept to be put back should
# one of them fail. The answers (TransactionCanceledException with a reason per item, in order) are
# moto's own.
try:
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed as _ConditionalCheckFailed,
        MultipleTransactionsException as _MultipleTransactions,
        TooManyTransactionsException as _TooManyTransactions,
        TransactionCanceledException as _TransactionCanceled,
        TransactWriteSingleOpException as _SingleOp,
    )
    from moto.dynamodb.comparisons import get_filter_expression as _filter_expression
except ImportError:
    _TransactionCanceled = None

if _DynamoDBBackend is not None and _TransactionCanceled is not None:
    import copy as _copy

    def _key_of(self, op_type, op):
        if op_type == "Put":
            attrs = op["Item"]
            table = self.get_table(op["TableName"])
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
            return key
        return op["Key"]

    def _restore(self, table_name, key, old):
        table = self.get_table(table_name)
        if old is None:
            try:
                self.delete_item(table_name, key)
            except Exception:
                pass
        elif table.range_key_attr is not None:
            table.items[old.hash_key][old.range_key] = old
        else:
            table.items[old.hash_key] = old

    def _transact_write_items(self, transact_items):
        if len(transact_items) > 100:
            raise _TooManyTransactions()
        targets = set()
        errors = []
        planned = []
        for item in transact_items:
            if len(list(item.keys())) > 1:
                raise _SingleOp
            op_type, op = next(iter(item.items()))
            original_item = None
            try:
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                key = _key_of(self, op_type, op)
                target = (str(table_name), str(dict(sorted(key.items()))))
                if target in targets:
                    raise _MultipleTransactions()
                targets.add(target)
                current = self.get_item(table_name, key)
                condition = op.get("ConditionExpression")
                if condition is not None:
                    check = _filter_expression(
                        condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                    )
                    if not check.expr(current):
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise _ConditionalCheckFailed(item=original_item)
                planned.append((op_type, op, table_name, key, _copy.deepcopy(current)))
                errors.append((None, None, None))
            except _MultipleTransactions:
                raise
            except _ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:
                if type(e).__name__ == "MockValidationException":
                    raise
                errors.append((type(e).__name__, str(e), original_item))
        if any(code is not None for code, _, _ in errors):
            raise _TransactionCanceled(errors)
        done = []
        try:
            for op_type, op, table_name, key, old in planned:
                names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    self.put_item(table_name, op["Item"], expression_attribute_names=names,
                                  expression_attribute_values=values)
                elif op_type == "Delete":
                    self.delete_item(table_name, key, expression_attribute_names=names,
                                     expression_attribute_values=values)
                elif op_type == "Update":
                    self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                     expression_attribute_names=names, expression_attribute_values=values)
                done.append((table_name, key, old))
        except Exception:
            for table_name, key, old in reversed(done):
                _restore(self, table_name, key, old)
            raise

    _DynamoDBBackend.transact_write_items = _one_at_a_time(_transact_write_items)
