"""Takes the README screenshots of the capture prompt and the sweep result (in Chinese), from the
real running features.

    .venv/bin/python tests/ui/x11/make_capture_screenshots.py [--out docs/screenshots]

capture-prompt.png: the real agent on Xvfb, a teller form on screen (ImageMagick `display`),
PrintScreen pressed with xdotool; the agent's justify dialog is grabbed with `import`.
sweep-result.png: `teller-guard sweep` run over a rendered teller folder tree; its real output is
drawn as a terminal (there is no terminal emulator on this machine).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from harness import AgentProcess, wait_until, write_policy, xserver  # noqa: E402

from tests.guard.scan.test_images import FONT, encode, render, render_id_card  # noqa: E402

ID = "11010519491231002X"
FORM = [["柜面业务系统 · 客户信息查询"], ["客户姓名：", "张三"], ["证件号码：", ID],
        ["银行卡号：", "6222021234567890128"], ["联系电话：", "13812345678"],
        ["开户网点：", "北京分行营业部"]]


def capture_prompt(out: Path, tmp: Path) -> None:
    img, _ = render(FORM, size=(1100, 420), fs=24)
    form = tmp / "form.png"
    form.write_bytes(encode(img, "PNG"))
    policy = write_policy(tmp / "policy.toml", 'version = "demo"\n[screen]\naction = "justify"\n')
    with xserver() as xs:
        shown = subprocess.Popen(["display", "-title", "core-banking", "-geometry", "+0+0",
                                  str(form)], env=xs.env)
        agent = AgentProcess(xs, tmp / "data", policy).start()
        try:
            wait_until(lambda: xs.visible_windows("core-banking"), timeout=15, what="the form")
            time.sleep(1)
            xs.key("Print")
            wait_until(lambda: xs.visible_windows("柜面隐私卫士"), timeout=120,
                       what="the capture prompt")
            time.sleep(1.0)
            full = tmp / "full.png"
            xs.screenshot(full)
            from PIL import Image

            shot = Image.open(full)
            shot.crop((0, 0, 1920, 1080)).resize((1280, 720)).save(out / "capture-prompt.png")
        finally:
            agent.stop()
            shown.terminate()


def sweep_result(out: Path, tmp: Path) -> None:
    home = tmp / "home"
    for d in ("桌面", "文档/WeChat Files/wxid_a1/FileStorage/File", "下载"):
        (home / d).mkdir(parents=True, exist_ok=True)
    (home / "桌面" / "身份证正面.png").write_bytes(encode(render_id_card(ID), "PNG"))
    (home / "文档/WeChat Files/wxid_a1/FileStorage/File" / f"{ID}.jpg").write_bytes(
        encode(render_id_card(ID, cover=True), "JPEG"))
    (home / "下载" / "客户名单.csv").write_text(f"姓名,身份证号,手机\n张三,{ID},13812345678\n",
                                            encoding="utf-8")
    (home / "桌面" / "会议纪要.txt").write_text("明天九点开会", encoding="utf-8")
    (home / "下载" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    env = {**os.environ, "TELLER_GUARD_DATA_DIR": str(tmp / "sdata"), "PYTHONPATH": str(ROOT)}
    cmd = ["teller-guard", "sweep", str(home)]
    run = subprocess.run([sys.executable, "-m", "guard.cli", *cmd[1:]], env=env,
                         capture_output=True, text=True, timeout=300)
    text = f"$ {' '.join(cmd).replace(str(tmp), '~')}\n" + run.stdout.replace(str(tmp), "~")
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(FONT), 20)
    lines = text.rstrip("\n").splitlines()
    width = max(int(font.getlength(line)) for line in lines) + 48
    img = Image.new("RGB", (width, 34 * len(lines) + 40), (30, 30, 36))
    d = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        d.text((24, 20 + 34 * i), line, font=font, fill=(220, 220, 220))
    img.save(out / "sweep-result.png")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        capture_prompt(args.out, Path(tmp))
        sweep_result(args.out, Path(tmp))


if __name__ == "__main__":
    main()
