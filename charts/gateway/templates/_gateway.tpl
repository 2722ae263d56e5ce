{{/* What the gateway adds to the shared templates of the lib chart. */}}

{{- define "gateway.settings" -}}
GATEWAY_ROUTES_FILE: /etc/gateway/routes.yaml
GATEWAY_ISSUER: {{ include "lib.issuer" . | quote }}
GATEWAY_JWKS_URL: {{ include "lib.jwksUrl" . | quote }}
GATEWAY_CORS_ORIGINS: {{ .Values.corsOrigins | toJson | quote }}
{{- end -}}

{{- define "gateway.secretEnv" -}}
- name: GATEWAY_REDIS_URL
  key: redis-url
  optional: true
{{- end -}}

{{- define "gateway.secretData" -}}
{{- with .Values.redis.url }}
redis-url: {{ . | quote }}
{{- else -}}
{}
{{- end }}
{{- end -}}

{{/* The routes: upstream URLs are the identity and orders Services' DNS names. */}}
{{- define "gateway.routes" -}}
{{- $upstreams := dict
      "identity" (dict "url" (printf "http://%s:%d" (include "lib.serviceHost" (list . "identity")) (int .Values.identity.port)))
      "orders" (dict "url" (printf "http://%s:%d" (include "lib.serviceHost" (list . "orders")) (int .Values.orders.port))) -}}
{{- range $name, $url := .Values.extraUpstreams }}
{{- $_ := set $upstreams $name (dict "url" $url) }}
{{- end }}
{{- range $name, $policy := .Values.upstreamPolicies }}
{{- if hasKey $upstreams $name }}
{{- $_ := set $upstreams $name (merge (dict) (get $upstreams $name) $policy) }}
{{- else }}
{{- fail (printf "upstreamPolicies.%s: no upstream is named %s" $name $name) }}
{{- end }}
{{- end }}
{{- dict "rate_limits" .Values.rateLimits "upstreams" $upstreams "routes" .Values.routes | toYaml }}
{{- end -}}

{{- define "gateway.files" -}}
routes.yaml: |
  {{- include "gateway.routes" . | nindent 2 }}
{{- end -}}

{{- define "gateway.volumes" -}}
- name: routes
  configMap:
    name: {{ include "lib.fullname" . }}-routes
{{- with .Values.upstreamTLS }}
{{- if and .secretName .configMapName }}
{{- fail "upstreamTLS: set secretName or configMapName, not both" }}
{{- else if .secretName }}
- name: upstream-tls
  secret:
    secretName: {{ .secretName }}
{{- else if .configMapName }}
- name: upstream-tls
  configMap:
    name: {{ .configMapName }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "gateway.volumeMounts" -}}
- name: routes
  mountPath: /etc/gateway
  readOnly: true
{{- if or .Values.upstreamTLS.secretName .Values.upstreamTLS.configMapName }}
{{- /* Beside the routes, not inside: their volume is read-only. */}}
- name: upstream-tls
  mountPath: /etc/gateway-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* The gateway answers, and its /auth route really reaches identity. */}}
{{- define "gateway.testUrls" -}}
{{- $base := printf "http://%s:%d" (include "lib.fullname" .) (int .Values.service.port) -}}
- {{ $base }}/healthz
- {{ $base }}/readyz
- {{ $base }}/auth/readyz
{{- end -}}
