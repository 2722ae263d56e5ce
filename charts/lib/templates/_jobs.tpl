{{/*
Migrations: a Helm hook Job that runs `python -m <service> migrate` before the
new pods (pre-install, pre-upgrade). At pre-install nothing of the release
exists yet, so the Job reads a hook-managed copy of the Secret (weight -10,
deleted once the Job succeeds) unless existingSecret names one made beforehand,
and it uses no ServiceAccount of the release.
*/}}
{{- define "lib.migrationSecret" -}}
{{- if and .Values.migrations.enabled (not .Values.existingSecret) -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "lib.fullname" . }}-migrations
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "lib.podLabels" (list . "migrations") | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
type: Opaque
stringData:
  {{- include (printf "%s.secretData" .Chart.Name) . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/*
Settings that name mounted files (*_FILE) stay out of the Job's environment:
it mounts no ConfigMap, since none of the release exists yet at pre-install.
*/}}
{{- define "lib.migrationJob" -}}
{{- if .Values.migrations.enabled -}}
{{- $secretName := .Values.existingSecret | default (printf "%s-migrations" (include "lib.fullname" .)) -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "lib.fullname" . }}-migrations
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "lib.podLabels" (list . "migrations") | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "0"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ .Values.migrations.backoffLimit }}
  activeDeadlineSeconds: {{ .Values.migrations.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: 600
  template:
    metadata:
      labels:
        {{- include "lib.podLabels" (list . "migrations") | nindent 8 }}
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext:
        {{- include "lib.podSecurityContext" . | nindent 8 }}
      {{- with (include "lib.schedulingExtras" . | trim) }}
      {{- . | nindent 6 }}
      {{- end }}
      containers:
        - name: migrations
          image: {{ include "lib.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args: ["migrate"]
          env:
            {{- range $name, $value := (include "lib.settings" . | fromYaml) }}
            {{- if not (hasSuffix "_FILE" $name) }}
            - name: {{ $name }}
              value: {{ $value | toString | quote }}
            {{- end }}
            {{- end }}
            {{- include "lib.downwardEnv" . | nindent 12 }}
            {{- include "lib.secretEnv" (list . $secretName) | trim | nindent 12 }}
          resources:
            {{- toYaml .Values.migrations.resources | nindent 12 }}
          securityContext:
            {{- include "lib.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            {{- include "lib.tmpMount" . | nindent 12 }}
      volumes:
        {{- include "lib.tmpVolume" . | nindent 8 }}
{{- end -}}
{{- end -}}

{{/*
`helm test`: a pod from the service's own image (no other image to pull) asks
each URL of "<chart>.testUrls" and fails unless every one answers 200.
*/}}
{{- define "lib.testPod" -}}
{{- if .Values.tests.enabled -}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ include "lib.fullname" . }}-test
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "lib.podLabels" (list . "test") | nindent 4 }}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext:
    {{- include "lib.podSecurityContext" . | nindent 4 }}
  containers:
    - name: test
      image: {{ include "lib.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: ["python", "-c"]
      args:
        - |
          import sys, urllib.request
          for url in sys.argv[1:]:
              with urllib.request.urlopen(url, timeout=10) as response:
                  print(url, response.status)
                  assert response.status == 200, url
      {{- range (include (printf "%s.testUrls" .Chart.Name) . | fromYamlArray) }}
        - {{ . | quote }}
      {{- end }}
      resources:
        requests:
          cpu: 10m
          memory: 32Mi
        limits:
          cpu: 200m
          memory: 64Mi
      securityContext:
        {{- include "lib.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        {{- include "lib.tmpMount" . | nindent 8 }}
  volumes:
    {{- include "lib.tmpVolume" . | nindent 4 }}
{{- end -}}
{{- end -}}
