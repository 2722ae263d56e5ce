{{/* What identity adds to the shared templates of the lib chart. */}}

{{- define "identity.settings" -}}
IDENTITY_ISSUER: {{ include "lib.issuer" . | quote }}
IDENTITY_CLIENTS_FILE: /etc/identity/clients/clients.yaml
IDENTITY_CLIENT_SECRETS_FILE: /etc/identity/secrets/client-secrets.yaml
IDENTITY_CORS_ORIGINS: {{ .Values.corsOrigins | toJson | quote }}
{{- end -}}

{{- define "identity.secretEnv" -}}
- name: IDENTITY_DATABASE_URL
  key: database-url
- name: IDENTITY_KEY_ENCRYPTION_KEY
  key: key-encryption-key
{{- end -}}

{{- define "identity.secretData" -}}
database-url: {{ required "set database.url (postgresql://...) or existingSecret" .Values.database.url | quote }}
key-encryption-key: {{ required "set keyEncryptionKey (head -c 32 /dev/urandom | base64) or existingSecret" .Values.keyEncryptionKey | quote }}
client-secrets.yaml: {{ .Values.clientSecrets | toYaml | quote }}
{{- end -}}

{{- define "identity.files" -}}
clients.yaml: |
  {{- dict "clients" .Values.clients | toYaml | nindent 2 }}
{{- end -}}

{{- define "identity.volumes" -}}
- name: clients
  configMap:
    name: {{ include "lib.fullname" . }}-clients
- name: client-secrets
  secret:
    secretName: {{ include "lib.secretName" . }}
    items:
      - key: client-secrets.yaml
        path: client-secrets.yaml
{{- end -}}

{{- define "identity.volumeMounts" -}}
- name: clients
  mountPath: /etc/identity/clients
  readOnly: true
- name: client-secrets
  mountPath: /etc/identity/secrets
  readOnly: true
{{- end -}}

{{- define "identity.testUrls" -}}
{{- $base := printf "http://%s:%d" (include "lib.fullname" .) (int .Values.service.port) -}}
- {{ $base }}/healthz
- {{ $base }}/readyz
{{- end -}}
