{{/* Labels every object carries (the kustomize base adds the same part-of label). */}}
{{- define "warden.labels" -}}
app.kubernetes.io/part-of: warden
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{- define "warden.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end }}
