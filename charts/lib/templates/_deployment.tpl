{{/*
The server Deployment. The chart supplies "<chart>.settings", "<chart>.secretEnv",
"<chart>.volumes" and "<chart>.volumeMounts"; everything else is the same for
every service: one uvicorn process per container, scaled by replicas.
*/}}
{{- define "lib.deployment" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "lib.podLabels" (list . "server") | nindent 4 }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "lib.selectorLabels" . | nindent 6 }}
      app.kubernetes.io/component: server
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      annotations:
        {{- include "lib.checksums" . | nindent 8 }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      labels:
        {{- include "lib.podLabels" (list . "server") | nindent 8 }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "lib.serviceAccountName" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext:
        {{- include "lib.podSecurityContext" . | nindent 8 }}
      {{- /* Longer than the drain, so that uvicorn finishes before SIGKILL. */}}
      terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
      {{- with (include "lib.schedulingExtras" . | trim) }}
      {{- . | nindent 6 }}
      {{- end }}
      {{- with (include "lib.topologySpread" . | trim) }}
      topologySpreadConstraints:
        {{- . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .Chart.Name }}
          image: {{ include "lib.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args: ["serve"]
          ports:
            - name: http
              containerPort: {{ .Values.port }}
              protocol: TCP
            - name: metrics
              containerPort: {{ .Values.metrics.port }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "lib.fullname" . }}
          env:
            {{- include "lib.downwardEnv" . | nindent 12 }}
            {{- include "lib.secretEnv" (list . (include "lib.secretName" .)) | trim | nindent 12 }}
          {{- include "lib.probes" . | nindent 10 }}
          {{- /* A moment for endpoints to drop the pod before uvicorn stops accepting. */}}
          lifecycle:
            preStop:
              sleep:
                seconds: {{ .Values.preStopSleepSeconds }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          securityContext:
            {{- include "lib.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            {{- include "lib.tmpMount" . | nindent 12 }}
            {{- with (include (printf "%s.volumeMounts" .Chart.Name) . | trim) }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        {{- include "lib.tmpVolume" . | nindent 8 }}
        {{- with (include (printf "%s.volumes" .Chart.Name) . | trim) }}
        {{- . | nindent 8 }}
        {{- end }}
{{- end -}}
