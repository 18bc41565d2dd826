//! The config repositories the bench syncs, written the way people write them: comments,
//! flow mappings, quoted and unquoted scalars, several documents a file.

use std::fmt::Write as _;
use std::path::Path;

/// The small app: 30 ConfigMaps `web-cm-NN` in one file (the first one's `value` is what the
/// commits change), and 10 Deployments `web-NN` each with its Service in a file of its own.
pub const SMALL_CONFIG_MAPS: usize = 30;
pub const SMALL_APPS: usize = 10;
pub const SMALL_OBJECTS: usize = SMALL_CONFIG_MAPS + 2 * SMALL_APPS;

/// The big one: 200 apps, each three ConfigMaps, a Deployment and a Service, one file each.
pub const BULK_APPS: usize = 200;
pub const BULK_OBJECTS: usize = 5 * BULK_APPS;

pub const SMALL_PATH: &str = "apps/web";
pub const BULK_PATH: &str = "apps/bulk";

/// Writes the small app below `dir` with `web-cm-00`'s value `value`.
pub fn write_small(dir: &Path, value: &str, registry: &str) {
    let base = dir.join(SMALL_PATH);
    std::fs::create_dir_all(&base).expect("the app directory");
    let mut maps = String::from(
        "# Settings of the web tier, one ConfigMap per concern.\n# Owned by the platform team; edit in git, not in the cluster.\n",
    );
    for i in 0..SMALL_CONFIG_MAPS {
        let v = if i == 0 {
            value.to_owned()
        } else {
            format!("steady-{i}")
        };
        let _ = write!(
            maps,
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-cm-{i:02}\n  labels: {{app.kubernetes.io/part-of: web}}\ndata:\n  value: \"{v}\"   # what the bench changes\n  LOG_LEVEL: info\n  'feature.flags': |\n    checkout=on\n    search=off\n"
        );
    }
    std::fs::write(base.join("configmaps.yaml"), maps).expect("configmaps.yaml");
    for i in 0..SMALL_APPS {
        let name = format!("web-{i:02}");
        std::fs::write(
            base.join(format!("{name}.yaml")),
            app(&name, "web", registry),
        )
        .expect("an app file");
    }
}

/// The ConfigMap of the bulk repository whose `value` the bench's commits change: the last one in
/// file order.
pub const BULK_CHANGED: &str = "app-199-routes";

/// Writes the bulk repository below `dir`, with [`BULK_CHANGED`]'s `value` `value`.
pub fn write_bulk(dir: &Path, registry: &str, value: &str) {
    let base = dir.join(BULK_PATH);
    std::fs::create_dir_all(&base).expect("the bulk directory");
    for i in 0..BULK_APPS {
        let name = format!("app-{i:03}");
        let mut text = format!("# {name}: settings, workload and service.\n");
        for (j, concern) in ["env", "flags", "routes"].iter().enumerate() {
            let _ = write!(
                text,
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-{concern}\n  labels:\n    app.kubernetes.io/name: {name}\ndata:\n  concern: {concern}\n  index: \"{j}\"\n  payload: >-\n    {name} {concern} settings, folded\n    onto one line by YAML\n"
            );
            if format!("{name}-{concern}") == BULK_CHANGED {
                let _ = writeln!(
                    text,
                    "  value: \"{value}\"   # what the bench's commits change"
                );
            }
        }
        text.push_str(&app(&name, "bulk", registry));
        std::fs::write(base.join(format!("{name}.yaml")), text).expect("an app file");
    }
}

/// A Deployment (one replica, an image kwok runs Ready) and its Service.
fn app(name: &str, part_of: &str, registry: &str) -> String {
    format!(
        r#"---
# The {name} workload. kwok runs its pod; the tag does not end in 13, so it stays Ready.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app.kubernetes.io/name: {name}, app.kubernetes.io/part-of: {part_of}}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app.kubernetes.io/name: {name}}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: {name}}}
    spec:
      containers:
        - name: app
          image: "{registry}/bench/sync-app:1.0.0"
          ports: [{{name: http, containerPort: 8080}}]
          resources:
            requests: {{cpu: 10m, memory: 16Mi}}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app.kubernetes.io/name: {name}}}
  ports:
    - name: http
      port: 80
      targetPort: http   # the container's named port
"#
    )
}

/// The chart: 30 ConfigMaps `chart-cm-NN` (the first one's `value` from `values.yaml`, what the
/// commits change) and 10 Deployments `chart-NN` each with its Service, from two templates with
/// a helper, as a team writes a chart.
pub const CHART_PATH: &str = "charts/web";
pub const CHART_OBJECTS: usize = SMALL_OBJECTS;

/// Writes the chart below `dir` with `chart-cm-00`'s value `value`.
pub fn write_chart(dir: &Path, value: &str, registry: &str) {
    let base = dir.join(CHART_PATH);
    std::fs::create_dir_all(base.join("templates")).expect("the chart directory");
    let files = [
        (
            "Chart.yaml",
            "# The web tier, packaged by its team.\napiVersion: v2\nname: web\nversion: 1.0.0\nappVersion: \"1.4.2\"\n".to_owned(),
        ),
        (
            "values.yaml",
            format!(
                "# What the bench's commits change.\nvalue: \"{value}\"\nconfigMaps: {SMALL_CONFIG_MAPS}\napps: {SMALL_APPS}\nimage: {registry}/demo/web:1.4.2\n"
            ),
        ),
        (
            "templates/_helpers.tpl",
            "{{- define \"web.labels\" -}}\napp.kubernetes.io/part-of: web\napp.kubernetes.io/instance: {{ .Release.Name }}\n{{- end -}}\n".to_owned(),
        ),
        (
            "templates/configmaps.yaml",
            "{{- range $i := until (int .Values.configMaps) }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: chart-cm-{{ printf \"%02d\" $i }}\n  labels:\n    {{- include \"web.labels\" $ | nindent 4 }}\ndata:\n  value: {{ if eq $i 0 }}{{ $.Values.value | quote }}{{ else }}\"steady-{{ $i }}\"{{ end }}\n  LOG_LEVEL: info\n{{- end }}\n".to_owned(),
        ),
        (
            "templates/apps.yaml",
            "{{- range $i := until (int .Values.apps) }}\n{{- $name := printf \"chart-%02d\" $i }}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ $name }}\n  labels:\n    {{- include \"web.labels\" $ | nindent 4 }}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: {{ $name }}}\n  template:\n    metadata:\n      labels: {app: {{ $name }}}\n    spec:\n      containers:\n        - name: web\n          image: {{ $.Values.image }}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {{ $name }}\nspec:\n  selector: {app: {{ $name }}}\n  ports:\n    - port: 80\n      targetPort: 8080\n{{- end }}\n".to_owned(),
        ),
    ];
    for (file, text) in files {
        std::fs::write(base.join(file), text).expect("a chart file");
    }
}
