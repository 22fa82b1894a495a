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
