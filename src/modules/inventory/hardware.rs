//! The hardware row: CPU (cpuinfo, cpufreq), memory (meminfo), board serial and model (device
//! tree on ARM boards, DMI on PCs, the `Serial` line of a Raspberry Pi's cpuinfo).

use super::root::Root;
use gatewatch_proto::inventory::Hardware;

/// Collects the hardware row.
pub fn collect(root: &Root) -> Hardware {
    let cpuinfo = root.read("/proc/cpuinfo").unwrap_or_default();
    let mut hw = Hardware::default();
    let mut cpuinfo_serial = String::new();
    let mut cpuinfo_mhz = 0u32;
    for line in cpuinfo.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => hw.cpu_cores += 1,
            // x86 names the model per processor; ARM has `model name` (newer kernels) or a
            // single `Hardware`/`Processor` line.
            "model name" | "Processor" | "cpu model" if hw.cpu_name.is_empty() => {
                hw.cpu_name = value.to_string()
            }
            "Hardware" if hw.cpu_name.is_empty() => hw.cpu_name = value.to_string(),
            "cpu MHz" if cpuinfo_mhz == 0 => {
                cpuinfo_mhz = value.parse::<f64>().map(|f| f as u32).unwrap_or(0)
            }
            "Serial" => cpuinfo_serial = value.trim_start_matches('0').to_string(),
            _ => {}
        }
    }
    hw.cpu_mhz = root
        .read_line("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
        .and_then(|khz| khz.parse::<u64>().ok())
        .map(|khz| (khz / 1000) as u32)
        .unwrap_or(cpuinfo_mhz);
    memory(root, &mut hw);
    hw.board_serial = first_line(
        root,
        &[
            "/proc/device-tree/serial-number",
            "/sys/firmware/devicetree/base/serial-number",
            "/sys/class/dmi/id/board_serial",
            "/sys/class/dmi/id/product_serial",
        ],
    )
    .or_else(|| (!cpuinfo_serial.is_empty()).then_some(cpuinfo_serial))
    .unwrap_or_default();
    hw.board_model = first_line(
        root,
        &[
            "/proc/device-tree/model",
            "/sys/firmware/devicetree/base/model",
            "/sys/class/dmi/id/board_name",
            "/sys/class/dmi/id/product_name",
        ],
    )
    .unwrap_or_default();
    hw
}

fn first_line(root: &Root, paths: &[&str]) -> Option<String> {
    paths.iter().find_map(|p| root.read_line(p))
}

fn memory(root: &Root, hw: &mut Hardware) {
    let meminfo = root.read("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| -> Option<u64> {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    hw.ram_total = field("MemTotal").unwrap_or(0);
    hw.ram_free = field("MemAvailable")
        .or_else(|| field("MemFree"))
        .unwrap_or(0);
    if hw.ram_total > 0 {
        let used = hw.ram_total.saturating_sub(hw.ram_free);
        hw.ram_usage = (used * 100 / hw.ram_total) as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raspberry_pi_cpuinfo_gives_model_cores_and_serial() {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path().join("proc");
        std::fs::create_dir_all(proc.join("device-tree")).unwrap();
        std::fs::write(
            proc.join("cpuinfo"),
            "processor\t: 0\nBogoMIPS\t: 108.00\nprocessor\t: 1\nHardware\t: BCM2835\nRevision\t: c03111\nSerial\t\t: 10000000a1b2c3d4\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n",
        )
        .unwrap();
        std::fs::write(
            proc.join("meminfo"),
            "MemTotal:        3884344 kB\nMemFree:  100 kB\nMemAvailable:    2942216 kB\n",
        )
        .unwrap();
        std::fs::write(
            proc.join("device-tree/model"),
            "Raspberry Pi 4 Model B Rev 1.1\0",
        )
        .unwrap();
        let hw = collect(&Root::new(dir.path()));
        assert_eq!(hw.cpu_cores, 2);
        assert_eq!(hw.cpu_name, "BCM2835");
        assert_eq!(hw.board_serial, "10000000a1b2c3d4".trim_start_matches('0'));
        assert_eq!(hw.board_model, "Raspberry Pi 4 Model B Rev 1.1");
        assert_eq!(
            (hw.ram_total, hw.ram_free, hw.ram_usage),
            (3884344, 2942216, 24)
        );
    }
}
