# Windows build: the PyInstaller folder, then the MSI with the WiX toolset (3.x: heat, candle,
# light) from the same TellerGuard.wxs, then the rows of post-build.sql through the
# WindowsInstaller COM object. Run from the repository root in a venv with `pip install .[build]`.
#   powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1
$ErrorActionPreference = "Stop"
$version = (Select-String -Path pyproject.toml -Pattern '^version = "(.*)"').Matches[0].Groups[1].Value
pyinstaller --noconfirm --clean --distpath dist --workpath build\pyinstaller installer\teller-guard.spec
$payload = Resolve-Path dist\teller-guard
dist\teller-guard\teller-guard.exe selftest
if ($LASTEXITCODE -ne 0) { throw "frozen selftest failed" }
$work = "build\msi"; New-Item -ItemType Directory -Force $work | Out-Null
# _internal\ -> ComponentGroup Runtime (64-bit components, stable GUIDs from the paths)
heat dir "$payload\_internal" -nologo -gg -g1 -srd -sreg -scom -ag -cg Runtime -dr INTERNALDIR `
     -var var.RuntimeDir -platform x64 -out "$work\runtime.wxs"
@"
<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi"><Fragment>
  <DirectoryRef Id="INSTALLDIR"><Directory Id="INTERNALDIR" Name="_internal"/></DirectoryRef>
</Fragment></Wix>
"@ | Set-Content "$work\internaldir.wxs"
candle -nologo -arch x64 -dVersion="$version" -dPayloadDir="$payload" -dRuntimeDir="$payload\_internal" `
       -dWin64=yes -out "$work\" installer\windows\TellerGuard.wxs "$work\runtime.wxs" "$work\internaldir.wxs"
$msi = "dist\TellerGuard-$version.msi"
light -nologo -sval -out $msi "$work\TellerGuard.wixobj" "$work\runtime.wixobj" "$work\internaldir.wixobj"
$installer = New-Object -ComObject WindowsInstaller.Installer
$db = $installer.GetType().InvokeMember("OpenDatabase", "InvokeMethod", $null, $installer, @((Resolve-Path $msi).Path, 1))
foreach ($line in Get-Content installer\windows\post-build.sql) {
  if ($line -match '^\s*$' -or $line -match '^--') { continue }
  $view = $db.GetType().InvokeMember("OpenView", "InvokeMethod", $null, $db, @($line))
  $view.GetType().InvokeMember("Execute", "InvokeMethod", $null, $view, $null) | Out-Null
  $view.GetType().InvokeMember("Close", "InvokeMethod", $null, $view, $null) | Out-Null
}
$db.GetType().InvokeMember("Commit", "InvokeMethod", $null, $db, $null) | Out-Null
Write-Host "built $msi"
