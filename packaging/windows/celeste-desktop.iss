; CelesteOS Desktop installer script for Inno Setup 6.3 or later.
; How to build it on a Windows machine, step by step: BUILD-WINDOWS.md beside this file.
;
;   iscc packaging\windows\celeste-desktop.iss
;
; Options (iscc /D...):
;   /DBundleDir=C:\path\to\dist\celeste-desktop   the PyInstaller one-folder build (default: ..\..\dist\celeste-desktop)
;   /DAppVersion=1.2.3                             only to override; by default the version is read from the
;                                                  bundle's celeste-desktop.exe, whose version resource the
;                                                  PyInstaller spec wrote from celeste_desktop.__version__
;   /DSign                                         sign Setup and the uninstaller (needs /Ssigntool=..., see BUILD-WINDOWS.md)
;
; Per-machine and per-user, on purpose:
;   - The program is installed per machine (Program Files, Start menu for all users; needs an administrator).
;   - Settings, the encrypted vault, the sync state and logs are per user, in
;     %LOCALAPPDATA%\CelesteOS\CelesteOS Desktop (platformdirs). Setup never touches them: an upgrade keeps
;     them, and the uninstaller deletes them only when the person asks (prompt, or /DELETEUSERDATA).
;   - "Start at login" is per user: the HKCU Run value named "CelesteOS Desktop", the same value the app's own
;     Settings switch writes (celeste_desktop/gui/autostart.py). Setup writes it as the user who started Setup,
;     not as the administrator who approved the UAC prompt, so it lands in the right profile. Other users of
;     the PC turn it on in the app's Settings.

#define AppName "CelesteOS Desktop"
#define AppPublisher "CelesteOS"
#define ExeName "celeste-desktop.exe"
#define CliExeName "celeste-desktop-cli.exe"
#define RunKey "HKCU\Software\Microsoft\Windows\CurrentVersion\Run"

#ifndef BundleDir
  #define BundleDir AddBackslash(SourcePath) + "..\..\dist\celeste-desktop"
#endif
#if !FileExists(BundleDir + "\" + ExeName)
  #error The PyInstaller bundle was not found: build it first (BUILD-WINDOWS.md, step 5) or pass /DBundleDir=...
#endif
#ifndef AppVersion
  #define AppVersion GetStringFileInfo(BundleDir + "\" + ExeName, "ProductVersion")
#endif
#define AppVersionNumbers GetVersionNumbersString(BundleDir + "\" + ExeName)

[Setup]
; Never change AppId: it is how Setup recognises an installed copy and upgrades it in place.
AppId={{A62D9A88-1F76-4078-9522-3DD2405B19C4}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher={#AppPublisher}
AppCopyright=Copyright (C) {#AppPublisher}
VersionInfoVersion={#AppVersionNumbers}
VersionInfoProductVersion={#AppVersionNumbers}
VersionInfoDescription={#AppName} Setup
DefaultDirName={autopf}\{#AppName}
DisableProgramGroupPage=yes
DisableDirPage=auto
UsePreviousAppDir=yes
UsePreviousTasks=yes
PrivilegesRequired=admin
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; Windows 10 1809 or later: what Qt 6 supports.
MinVersion=10.0.17763
OutputDir=..\..\dist
OutputBaseFilename=celeste-desktop-{#AppVersion}-windows-x64-setup
SetupIconFile=..\..\resources\icons\celeste.ico
UninstallDisplayIcon={app}\{#ExeName}
UninstallDisplayName={#AppName}
WizardStyle=modern
Compression=lzma2/max
SolidCompression=yes
; An upgrade closes a running copy (the sync resumes where it stopped), and .pyd files count as in use too.
CloseApplications=force
CloseApplicationsFilter=*.exe,*.dll,*.pyd
RestartApplications=no
SetupLogging=yes
#ifdef Sign
SignTool=signtool
SignedUninstaller=yes
#endif

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "startatlogin"; Description: "Start {#AppName} when I sign in to Windows (it waits in the notification area)"; GroupDescription: "Start-up:"
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; Each version brings its own set of libraries: remove the previous version's, so no stale Qt plugin or
; extension module is ever loaded. Only the program folder; the user's data lives elsewhere.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#ExeName}"; Comment: "Copy the yacht's OneDrive and SharePoint documents to CelesteOS"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#ExeName}"; Tasks: desktopicon

[Run]
; Start at login, for the user who started Setup (runasoriginaluser); never removed by an upgrade, so a choice
; made later in the app's Settings survives. The command matches gui/autostart.py: "<exe>" --background.
Filename: "{sys}\reg.exe"; Parameters: "add ""{#RunKey}"" /v ""{#AppName}"" /t REG_SZ /d ""\""{app}\{#ExeName}\"" --background"" /f"; Flags: runhidden runasoriginaluser waituntilterminated; Tasks: startatlogin; StatusMsg: "Setting up start at login..."
; Never run the app elevated: its vault key and settings belong to the signed-in user.
Filename: "{app}\{#ExeName}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent runasoriginaluser

[UninstallRun]
; A copy still running would keep files in use; its sync resumes where it stopped if it is reinstalled.
Filename: "{sys}\taskkill.exe"; Parameters: "/F /T /IM {#ExeName}"; Flags: runhidden; RunOnceId: "StopApp"
; The login entry would point at a program that is gone (HKCU of the user running the uninstaller).
Filename: "{sys}\reg.exe"; Parameters: "delete ""{#RunKey}"" /v ""{#AppName}"" /f"; Flags: runhidden; RunOnceId: "RemoveRunValue"

[Code]
var
  DeleteUserData: Boolean;

function UserDataDir(): String;
begin
  // platformdirs.user_data_dir("CelesteOS Desktop", "CelesteOS", roaming=False): settings, vault, state,
  // logs and cache all live under it on Windows (demo mode too, in its "demo" subfolder).
  Result := ExpandConstant('{localappdata}\CelesteOS\CelesteOS Desktop');
end;

function HasCommandLineSwitch(const Switch: String): Boolean;
var
  Index: Integer;
begin
  Result := False;
  for Index := 1 to ParamCount do
    if CompareText(ParamStr(Index), Switch) = 0 then
      Result := True;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  ResultCode: Integer;
begin
  if CurUninstallStep = usUninstall then
  begin
    // Asked after "Are you sure?" and before anything is removed. Keeping is the default: a reinstall then
    // carries on without signing in again or copying every document again over the satellite link.
    DeleteUserData := HasCommandLineSwitch('/DELETEUSERDATA');
    if (not DeleteUserData) and (not UninstallSilent()) and DirExists(UserDataDir()) then
      DeleteUserData := MsgBox('Also delete your CelesteOS Desktop settings, saved sign-in and sync state?' + #13#10#13#10 +
        'They are kept in ' + UserDataDir() + '.' + #13#10#13#10 +
        'Choose No (recommended) to keep them: if you install CelesteOS Desktop again, it carries on where it ' +
        'stopped, without signing in again or copying every document again.',
        mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES;
    if DeleteUserData then
      // Signs out and wipes the saved secrets, including the key in Windows Credential Manager.
      // Best effort: a PC that was never set up answers with an error, which is fine.
      Exec(ExpandConstant('{app}\{#CliExeName}'), 'logout', '', SW_HIDE, ewWaitUntilTerminated, ResultCode);
  end;
  if (CurUninstallStep = usPostUninstall) and DeleteUserData then
  begin
    DelTree(UserDataDir(), True, True, True);
    // The publisher folder goes too, but only when nothing else of CelesteOS is in it.
    RemoveDir(ExpandConstant('{localappdata}\CelesteOS'));
  end;
end;
