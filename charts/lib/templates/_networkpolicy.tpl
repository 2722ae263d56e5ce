{{/*
NetworkPolicies. Each chart denies all traffic to and from its pods (server,
migrations, test), then allows exactly the paths the platform needs:
client -> gateway, gateway -> identity and orders, orders -> identity, each
service -> its database or Redis, and DNS. Peers are matched by name and
part-of in the release namespace, so separately installed charts work too.
*/}}

{{- define "lib.networkPolicyDefaultDeny" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "lib.fullname" . }}-default-deny
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "lib.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
{{- end -}}

{{/* A peer: the pods of one platform component. Usage: (list "identity" "server") */}}
{{- define "lib.componentPeer" -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/name: {{ index . 0 }}
      app.kubernetes.io/part-of: platform
      app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "lib.dnsEgress" -}}
- to:
    {{- toYaml .Values.networkPolicy.dns.to | nindent 4 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end -}}

{{/* Egress to a backing service described by {to: [peers], port: N}. */}}
{{- define "lib.backingEgress" -}}
- to:
    {{- toYaml .to | nindent 4 }}
  ports:
    - port: {{ .port }}
      protocol: TCP
{{- end -}}

{{/* Prometheus (or whatever networkPolicy.metricsFrom names) may scrape. */}}
{{- define "lib.metricsIngress" -}}
{{- with .Values.networkPolicy.metricsFrom }}
- from:
    {{- toYaml . | nindent 4 }}
  ports:
    - port: metrics
      protocol: TCP
{{- end }}
{{- end -}}

{{/* The migration Job reaches DNS and its database, nothing else. */}}
{{- define "lib.networkPolicyMigrations" -}}
{{- if .Values.migrations.enabled -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "lib.fullname" . }}-migrations
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "lib.selectorLabels" . | nindent 6 }}
      app.kubernetes.io/component: migrations
  policyTypes:
    - Egress
  egress:
    {{- include "lib.dnsEgress" . | nindent 4 }}
    {{- include "lib.backingEgress" .Values.networkPolicy.database | nindent 4 }}
{{- end -}}
{{- end -}}

{{/* The helm test pod reaches DNS and its own service's pods. */}}
{{- define "lib.networkPolicyTest" -}}
{{- if .Values.tests.enabled -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "lib.fullname" . }}-test
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "lib.selectorLabels" . | nindent 6 }}
      app.kubernetes.io/component: test
  policyTypes:
    - Egress
  egress:
    {{- include "lib.dnsEgress" . | nindent 4 }}
    - to:
        {{- include "lib.componentPeer" (list .Chart.Name "server") | nindent 8 }}
      ports:
        - port: {{ .Values.port }}
          protocol: TCP
{{- end -}}
{{- end -}}
