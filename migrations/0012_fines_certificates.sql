-- Fines are looked up by plate and registration certificate (СТС) number together, as official
-- look-ups are, and paid through payment-service. Applied once, inside a transaction, by the
-- migration runner; no BEGIN/COMMIT here.

-- fines-service: the certificate number a fine was issued against, in car-service's stored
-- form (2 digits, 2 digits or Cyrillic capitals, 6 digits, single spaces); a fine without one
-- matches no certificate, so only staff see it. And the payment that paid it, once paid
-- through payment-service (fines marked paid before that have none).
ALTER TABLE fines.fines
    ADD COLUMN certificate_number text
        CHECK (certificate_number ~ '^[0-9]{2} [0-9А-ЯЁ]{2} [0-9]{6}$'),
    ADD COLUMN payment_id uuid UNIQUE,
    ADD CONSTRAINT fines_payment_id_paid_check CHECK (payment_id IS NULL OR paid_at IS NOT NULL);

-- The demonstration fines' certificates (the README lists which number unlocks which plate).
UPDATE fines.fines AS f
SET certificate_number = demo.certificate_number
FROM (VALUES
    ('А123БВ799', '99 АА 123456'),
    ('О777ОО77',  '77 ОО 777777'),
    ('К456МН178', '78 09 456178'),
    ('Е001КХ750', '50 ЕК 001750')
) AS demo (license_plate, certificate_number)
WHERE f.license_plate = demo.license_plate AND f.certificate_number IS NULL;

-- car-service: a registration document's number is a certificate number in the same stored
-- form from now on. NOT VALID: documents attached before numbers were checked stay as they
-- are (they prove no plate).
ALTER TABLE cars.documents
    ADD CONSTRAINT documents_registration_number_check
        CHECK (kind <> 'registration' OR number ~ '^[0-9]{2} [0-9А-ЯЁ]{2} [0-9]{6}$') NOT VALID;
