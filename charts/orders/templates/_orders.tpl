{{/* What orders adds to the shared templates of the lib chart. */}}

{{- define "orders.settings" -}}
ORDERS_ISSUER: {{ include "lib.issuer" . | quote }}
ORDERS_JWKS_URL: {{ include "lib.jwksUrl" . | quote }}
ORDERS_AUDIENCE: {{ .Values.audience | quote }}
{{- end -}}

{{- define "orders.secretEnv" -}}
- name: ORDERS_DATABASE_URL
  key: database-url
{{- end -}}

{{- define "orders.secretData" -}}
database-url: {{ required "set database.url (postgresql://...) or existingSecret" .Values.database.url | quote }}
{{- end -}}

{{- define "orders.files" -}}{{- end -}}
{{- define "orders.volumes" -}}{{- end -}}
{{- define "orders.volumeMounts" -}}{{- end -}}

{{- define "orders.testUrls" -}}
{{- $base := printf "http://%s:%d" (include "lib.fullname" .) (int .Values.service.port) -}}
- {{ $base }}/healthz
- {{ $base }}/readyz
{{- end -}}
