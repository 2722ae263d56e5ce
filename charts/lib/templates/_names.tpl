{{/*
Names and labels. Every object of a component carries the recommended
app.kubernetes.io/* labels; selectors use only name and instance, which never
change over a release's life (a Deployment's selector is immutable).
*/}}

{{- define "lib.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The Service (and object) name of a component of this platform, seen from any
chart of the same release: global.componentNames.<component> when set (the
umbrella sets identity/orders/gateway so that cluster DNS names are the plain
ones), else the `helm create` rule on the release name.
Usage: include "lib.componentName" (list $ "identity")
*/}}
{{- define "lib.componentName" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $names := (($root.Values.global | default dict).componentNames | default dict) -}}
{{- if get $names $component -}}
{{- get $names $component | trunc 63 | trimSuffix "-" -}}
{{- else if contains $component $root.Release.Name -}}
{{- $root.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" $root.Release.Name $component | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lib.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "lib.componentName" (list . .Chart.Name) -}}
{{- end -}}
{{- end -}}

{{/* The in-cluster DNS name of a component's Service in the release namespace. */}}
{{- define "lib.serviceHost" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $domain := (($root.Values.global | default dict).clusterDomain | default "cluster.local") -}}
{{- printf "%s.%s.svc.%s" (include "lib.componentName" (list $root $component)) $root.Release.Namespace $domain -}}
{{- end -}}

{{- define "lib.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lib.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lib.labels" -}}
helm.sh/chart: {{ include "lib.chart" . }}
{{ include "lib.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: platform
{{- end -}}

{{/* Labels of one component's pods: the server, its migrations or its test. */}}
{{- define "lib.podLabels" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{ include "lib.labels" $root }}
app.kubernetes.io/component: {{ $component }}
{{- end -}}

{{- define "lib.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lib.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "lib.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* The Secret the pods read: an existing one, or the chart's own. */}}
{{- define "lib.secretName" -}}
{{- default (include "lib.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{/*
The issuer tokens carry: the chart's own value, else the umbrella's global one.
It is the public URL (RFC 8414 / OIDC Discovery compare it as a string), never
derived from an in-cluster address.
*/}}
{{- define "lib.issuer" -}}
{{- $issuer := .Values.issuer | default ((.Values.global | default dict).issuer) -}}
{{- required "set issuer (or global.issuer): the public URL of identity, e.g. https://example.com/auth" $issuer | trimSuffix "/" -}}
{{- end -}}

{{/* identity's JWKS on its in-cluster Service, in this release's namespace. */}}
{{- define "lib.jwksUrl" -}}
{{- printf "http://%s:%d/.well-known/jwks.json" (include "lib.serviceHost" (list . "identity")) (int .Values.identity.port) -}}
{{- end -}}
