-- Offline payment codes no longer use a slot-mask key shared by every device: each device
-- is handed its own locators, enciphered under a new server-only key (code_locator_key,
-- made at start). The old key was given to every enrolled device, so it is dropped.
DELETE FROM settings WHERE name = 'code_mask_key';
