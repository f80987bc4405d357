{{/* Labels every object of the chart carries; the argument is (list . "component" "name"). */}}
{{- define "marblerun.labels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/component: {{ index . 1 }}
app.kubernetes.io/created-by: {{ $root.Values.global.createdBy }}
app.kubernetes.io/name: {{ index . 2 }}
app.kubernetes.io/part-of: marblerun
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
{{- end -}}

{{/* The Coordinator pods' selector, as MarbleRun's chart has it. */}}
{{- define "marblerun.coordinatorSelector" -}}
{{ .Values.global.coordinatorComponentLabel }}: coordinator
{{ .Values.global.coordinatorNamespaceLabel }}: {{ .Release.Namespace }}
{{- end -}}

{{/* The names the Coordinator's root certificate holds: the hostname and both Services. */}}
{{- define "marblerun.coordinatorDNSNames" -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list .Values.coordinator.hostname -}}
{{- range $service := list "coordinator-mesh-api" "coordinator-client-api" -}}
{{- $names = append $names $service -}}
{{- $names = append $names (printf "%s.%s" $service $ns) -}}
{{- $names = append $names (printf "%s.%s.svc" $service $ns) -}}
{{- $names = append $names (printf "%s.%s.svc.cluster.local" $service $ns) -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{/* The Coordinator's resources; in simulation the SGX device plugin's resources are dropped. */}}
{{- define "marblerun.coordinatorResources" -}}
{{- $resources := deepCopy (.Values.coordinator.resources | default dict) -}}
{{- if .Values.coordinator.simulation -}}
{{- range $kind := list "limits" "requests" -}}
{{- $entries := index $resources $kind | default dict -}}
{{- range $key := list "sgx.intel.com/epc" "sgx.intel.com/enclave" "sgx.intel.com/provision" "kubernetes.azure.com/sgx_epc_mem_in_MiB" "alibabacloud.com/sgx_epc_MiB" -}}
{{- $_ := unset $entries $key -}}
{{- end -}}
{{- if $entries -}}{{- $_ := set $resources $kind $entries -}}{{- else -}}{{- $_ := unset $resources $kind -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $resources -}}
{{- end -}}

{{/* Pod and container security: non-root, read-only root filesystem, no privilege escalation, no capabilities. */}}
{{- define "marblerun.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "marblerun.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "marblerun.image" -}}
{{- $component := index . 0 -}}
"{{ $component.repository }}/{{ $component.image }}:{{ $component.version }}"
{{- end -}}
