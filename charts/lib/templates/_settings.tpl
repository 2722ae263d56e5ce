{{/*
Settings every service reads, as a map of environment variables. The chart's
own "<chart>.settings" adds its service's; together they become the ConfigMap
the server pods load, and the migration Job's environment.
*/}}
{{- define "lib.commonSettings" -}}
{{- $prefix := upper .Chart.Name -}}
{{ $prefix }}_HOST: "0.0.0.0"
{{ $prefix }}_PORT: {{ .Values.port | quote }}
{{ $prefix }}_LOG_LEVEL: {{ .Values.logLevel | quote }}
{{ $prefix }}_TRUSTED_PROXIES: {{ .Values.trustedProxies | toJson | quote }}
{{ $prefix }}_GRACEFUL_SHUTDOWN_SECONDS: {{ .Values.gracefulShutdownSeconds | quote }}
OTEL_SERVICE_NAME: {{ .Chart.Name | quote }}
{{- with .Values.otel.exporterEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
OTEL_EXPORTER_OTLP_PROTOCOL: {{ $.Values.otel.protocol | quote }}
{{- end }}
{{- with .Values.otel.tracesSampler }}
OTEL_TRACES_SAMPLER: {{ . | quote }}
{{- end }}
{{- with .Values.otel.tracesSamplerArg }}
OTEL_TRACES_SAMPLER_ARG: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The chart's settings: common ones plus "<chart>.settings". */}}
{{- define "lib.settings" -}}
{{ include "lib.commonSettings" . }}
{{ include (printf "%s.settings" .Chart.Name) . }}
{{- end -}}

{{/*
The pod and namespace reach OpenTelemetry's resource through the downward API
(the variables are defined first so that $(...) expands them).
*/}}
{{- define "lib.downwardEnv" -}}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "k8s.pod.name=$(K8S_POD_NAME),k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.node.name=$(K8S_NODE_NAME),service.version=%s%s" (.Values.image.tag | default .Chart.AppVersion) (include "lib.extraResourceAttributes" .) | quote }}
{{- end -}}

{{- define "lib.extraResourceAttributes" -}}
{{- range $key, $value := .Values.otel.resourceAttributes -}}
,{{ $key }}={{ $value }}
{{- end -}}
{{- end -}}

{{/*
Environment variables read from the Secret: "<chart>.secretEnv" lists
{name, key, optional}. Usage: include "lib.secretEnv" (list $ secretName)
*/}}
{{- define "lib.secretEnv" -}}
{{- $root := index . 0 -}}
{{- $secretName := index . 1 -}}
{{- range (include (printf "%s.secretEnv" $root.Chart.Name) $root | fromYamlArray) }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}
{{- end -}}

{{/* Checksums of what the pods read, so that a change rolls them. */}}
{{- define "lib.checksums" -}}
checksum/config: {{ include "lib.settings" . | sha256sum }}
{{- if not .Values.existingSecret }}
checksum/secret: {{ include (printf "%s.secretData" .Chart.Name) . | sha256sum }}
{{- end }}
{{- with (include (printf "%s.files" .Chart.Name) .) }}
checksum/files: {{ . | sha256sum }}
{{- end }}
{{- end -}}
