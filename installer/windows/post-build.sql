-- Applied to the built MSI by both builds (installer/windows/build-msi.sh with msibuild -q,
-- build.ps1 through the WindowsInstaller COM object): the rows wixl cannot author. One
-- statement per line; lines starting with "--" are comments.
--
-- Public properties reach the elevated (server-side) install only when listed as secure.
UPDATE `Property` SET `Value` = 'WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;ENDPOINT_URL;ENROLL_TOKEN;BRANCH_ID' WHERE `Property` = 'SecureCustomProperties'
-- The feature holding agent.endpoint is not installed without ENDPOINT_URL (level 0): an empty
-- policy value would hide the machine policy file's endpoint.
CREATE TABLE `Condition` (`Feature_` CHAR(38) NOT NULL, `Level` SHORT NOT NULL, `Condition` CHAR(255) PRIMARY KEY `Feature_`, `Level`)
INSERT INTO `Condition` (`Feature_`, `Level`, `Condition`) VALUES ('Endpoint', 0, 'NOT ENDPOINT_URL')
-- The enrolment token's component is installed only when a token is given: an upgrade or repair
-- without ENROLL_TOKEN must not write an empty token (nor bring back one the service deleted).
UPDATE `Component` SET `Condition` = 'ENROLL_TOKEN' WHERE `Component` = 'EnrolToken'
-- The token's key (Services\TellerGuard\Enrolment) is readable and writable by SYSTEM only (the
-- service runs as LocalSystem and deletes it once enrolled): GENERIC_ALL = 268435456.
-- LockPermissions replaces the key's inherited ACL (Users: read; Administrators) with this one.
CREATE TABLE `LockPermissions` (`LockObject` CHAR(72) NOT NULL, `Table` CHAR(32) NOT NULL, `Domain` CHAR(255), `User` CHAR(255) NOT NULL, `Permission` LONG PRIMARY KEY `LockObject`, `Table`, `Domain`, `User`)
INSERT INTO `LockPermissions` (`LockObject`, `Table`, `User`, `Permission`) VALUES ('EnrolToken', 'Registry', 'SYSTEM', 268435456)
