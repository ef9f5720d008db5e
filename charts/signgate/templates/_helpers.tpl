{{/* Names. */}}
{{- define "signgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "signgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "signgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "signgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "signgate.labels" -}}
helm.sh/chart: {{ include "signgate.chart" . }}
{{ include "signgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/part-of: signgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "signgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "signgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Service the API server calls; the serving certificate must name <service>.<namespace>.svc. */}}
{{- define "signgate.serviceName" -}}
{{- include "signgate.fullname" . }}
{{- end }}

{{- define "signgate.serviceDNSNames" -}}
{{- $svc := include "signgate.serviceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{- define "signgate.tlsSecretName" -}}
{{- if eq .Values.tls.mode "existingSecret" }}
{{- required "tls.existingSecret.name is required when tls.mode is existingSecret" .Values.tls.existingSecret.name }}
{{- else }}
{{- printf "%s-tls" (include "signgate.fullname" .) }}
{{- end }}
{{- end }}

{{- define "signgate.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* signgate's own deadline for a review: two seconds inside the API server's. */}}
{{- define "signgate.reviewTimeout" -}}
{{- $t := int .Values.webhook.timeoutSeconds }}
{{- if lt $t 3 }}
{{- fail "webhook.timeoutSeconds must be at least 3: signgate's review deadline is timeoutSeconds - 2" }}
{{- end }}
{{- sub $t 2 }}
{{- end }}

{{/* Where the configuration and its files are mounted. */}}
{{- define "signgate.configDir" -}}/etc/signgate/config{{- end }}
{{- define "signgate.tlsDir" -}}/etc/signgate/tls{{- end }}
{{- define "signgate.credentialsDir" -}}/etc/signgate/credentials{{- end }}

{{/*
The configuration file (SPEC "Configuration") from .Values.config, with the chart's extensions
translated: caBundle -> caFile (a key of the same ConfigMap, relative to the configuration
file), credentials.secretName -> dockerConfigFile (the mounted Secret), credentials.passwordSecret
-> passwordFile (the mounted Secret key).
*/}}
{{- define "signgate.configFile" -}}
{{- $c := .Values.config }}
{{- $roots := list }}
{{- range $t := $c.trustRoots }}
{{- if $t.notary }}
{{- $n := omit $t.notary "caBundle" }}
{{- if $t.notary.caBundle }}
{{- $_ := set $n "caFile" (printf "notary-ca-%s.crt" $t.name) }}
{{- end }}
{{- $roots = append $roots (dict "name" $t.name "notary" $n) }}
{{- else }}
{{- /* notation: passed through (trust stores are inline PEM or mounted files already) */}}
{{- $roots = append $roots $t }}
{{- end }}
{{- end }}
{{- $registries := list }}
{{- range $i, $r := $c.registries }}
{{- $out := omit $r "caBundle" "credentials" }}
{{- if $r.caBundle }}
{{- $_ := set $out "caFile" (printf "registry-ca-%d.crt" $i) }}
{{- end }}
{{- with $r.credentials }}
{{- $dir := printf "%s/%d" (include "signgate.credentialsDir" $) $i }}
{{- if .secretName }}
{{- $_ := set $out "credentials" (dict "dockerConfigFile" (printf "%s/.dockerconfigjson" $dir)) }}
{{- else if .passwordSecret }}
{{- $_ := set $out "credentials" (dict "username" .username "passwordFile" (printf "%s/password" $dir)) }}
{{- else }}
{{- $_ := set $out "credentials" . }}
{{- end }}
{{- end }}
{{- $registries = append $registries $out }}
{{- end }}
{{- /* In SPEC order, for the admin who reads the ConfigMap. */}}
{{- toYaml (dict "trustRoots" $roots) }}
{{- if $registries }}
{{ toYaml (dict "registries" $registries) }}
{{- end }}
{{ toYaml (dict "policies" ($c.policies | default list)) }}
{{ toYaml (dict "defaultAction" $c.defaultAction) }}
{{- end }}

{{/* What the validating and the mutating webhook share. Arguments: root, path, failurePolicy, caBundle. */}}
{{- define "signgate.webhookCommon" -}}
{{- $ns := .root.Release.Namespace -}}
admissionReviewVersions: ["v1"]
sideEffects: None
matchPolicy: Equivalent
timeoutSeconds: {{ .root.Values.webhook.timeoutSeconds }}
failurePolicy: {{ .failurePolicy }}
clientConfig:
  service:
    name: {{ include "signgate.serviceName" .root }}
    namespace: {{ $ns }}
    path: {{ .path }}
    port: {{ .root.Values.service.port }}
  {{- with .caBundle }}
  caBundle: {{ . }}
  {{- end }}
# Never the webhook's own namespace, the control plane's, or a namespace that opted out: the
# webhook can then always be repaired, even when it is down (failurePolicy Fail).
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- toYaml (append .root.Values.webhook.excludeNamespaces $ns | uniq) | nindent 8 }}
    - key: {{ .root.Values.webhook.optOutLabel }}
      operator: NotIn
      values: ["true"]
    {{- with .root.Values.webhook.namespaceSelectorExpressions }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- with .root.Values.webhook.objectSelector }}
objectSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
"true" when a policy selects namespaces by label: only then does signgate watch namespaces
(RBAC list + watch, and the service account token); otherwise empty.
*/}}
{{- define "signgate.usesLabels" -}}
{{- range $p := .Values.config.policies }}
{{- if (($p.namespaces | default dict).matchLabels) }}true{{ break }}{{ end }}
{{- end }}
{{- end }}

{{/*
"true" when signgate talks to the Kubernetes API: a policy selects namespaces by label (the
namespace watch) or audit.enabled (the running Pods listed); only then is the service account
token mounted. Otherwise empty.
*/}}
{{- define "signgate.usesApi" -}}
{{- if or (include "signgate.usesLabels" .) .Values.audit.enabled }}true{{ end }}
{{- end }}
